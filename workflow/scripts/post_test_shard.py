"""Thresholds, CRF and reconciliation on one test shard (vocflow.predict.post_test_shard)."""

from pathlib import Path

from vocflow.config import TASKS
from vocflow.logs import setup_logging
from vocflow.predict import post_test_shard

setup_logging(snakemake.log[0])
inp = snakemake.input
post_test_shard(Path(inp.cache[0]).parent, {t: inp[f"{t}_probs"] for t in TASKS},
                {t: inp[f"{t}_thresholds"] for t in TASKS}, inp.crf, snakemake.params.reconcile,
                snakemake.params.shards, int(snakemake.wildcards.shard), snakemake.output[0],
                threads=snakemake.threads)
