"""Score the DenseCRF settings on one shard of the OOF sample (vocflow.crf.crf_search_shard)."""

from pathlib import Path

from vocflow.crf import crf_search_shard
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
crf_search_shard(snakemake.input.selection, Path(snakemake.input.cache[0]).parent,
                 snakemake.input.thresholds, p.search, p.sample, p.seed, p.shards,
                 int(snakemake.wildcards.shard), snakemake.output[0],
                 threads=snakemake.threads)
