"""Fetch one pretrained weights file into the torch hub cache (vocflow.models.weights)."""

from vocflow.logs import setup_logging
from vocflow.models.weights import fetch_to_marker

setup_logging(snakemake.log[0])
fetch_to_marker(snakemake.wildcards.key, snakemake.output[0])
