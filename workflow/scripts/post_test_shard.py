"""The post-processing pipeline on one test shard (vocflow.predict.post_test_shard)."""

from pathlib import Path

from vocflow.artifacts import TASKS
from vocflow.logs import setup_logging
from vocflow.predict import post_test_shard

setup_logging(snakemake.log[0])
inp = snakemake.input
post_test_shard(test_cache_dir=Path(inp.cache[0]).parent,
                probs_npzs={t: inp[f"{t}_probs"] for t in TASKS},
                thresholds={t: inp[f"{t}_thresholds"] for t in TASKS}, crf_yaml=inp.crf,
                reconcile_mode=snakemake.params.reconcile, shards=snakemake.params.shards,
                shard=int(snakemake.wildcards.shard), out_npz=snakemake.output[0],
                threads=snakemake.threads)
