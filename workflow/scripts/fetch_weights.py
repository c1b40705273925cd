"""Fetch one pretrained weights file into the cache (vocflow.models.weights.fetch_to_marker)."""

from vocflow.logs import setup_logging
from vocflow.models.weights import fetch_to_marker

setup_logging(snakemake.log[0])
fetch_to_marker(key=snakemake.wildcards.key, marker=snakemake.output[0])
