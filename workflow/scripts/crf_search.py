"""One shard of the DenseCRF parameter search (vocflow.crf_search.crf_search_shard)."""

from pathlib import Path

from vocflow.crf_search import crf_search_shard
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
crf_search_shard(selection_yaml=snakemake.input.selection,
                 train_cache_dir=Path(snakemake.input.cache[0]).parent,
                 thresholds_yaml=snakemake.input.thresholds, search=p.search, sample=p.sample,
                 seed=p.seed, shards=p.shards, shard=int(snakemake.wildcards.shard),
                 out_csv=snakemake.output[0], threads=snakemake.threads)
