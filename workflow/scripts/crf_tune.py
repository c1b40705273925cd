"""Gather the CRF search shards into crf.yaml (vocflow.crf_search.crf_tune)."""

from vocflow.crf_search import crf_tune
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
crf_tune(shard_csvs=list(snakemake.input), search=snakemake.params.search,
         min_gain=snakemake.params.min_gain, out_yaml=snakemake.output[0])
