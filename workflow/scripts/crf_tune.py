"""Gather the CRF search shards and decide whether CRF is kept (vocflow.crf.crf_tune)."""

from vocflow.crf import crf_tune
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
crf_tune(list(snakemake.input), snakemake.params.search, snakemake.params.min_gain,
         snakemake.output[0])
