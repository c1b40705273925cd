"""Score the OOF ablation steps on one shard (vocflow.ablation.ablation_shard)."""

from pathlib import Path

from vocflow.ablation import ablation_shard
from vocflow.config import TASKS
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
inp, p = snakemake.input, snakemake.params
ablation_shard(Path(inp.cache[0]).parent, {t: inp[f"{t}_selection"] for t in TASKS},
               {t: inp[f"{t}_tta"] for t in TASKS}, {t: inp[f"{t}_thresholds"] for t in TASKS},
               inp.crf, p.reconcile, p.tta, p.shards, int(snakemake.wildcards.shard),
               snakemake.output[0], threads=snakemake.threads)
