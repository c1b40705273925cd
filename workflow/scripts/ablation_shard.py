"""One shard of the OOF ablation (vocflow.ablation.ablation_shard)."""

from pathlib import Path

from vocflow.ablation import ablation_shard
from vocflow.artifacts import TASKS
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
inp = snakemake.input
ablation_shard(train_cache_dir=Path(inp.cache[0]).parent,
               selections={t: inp[f"{t}_selection"] for t in TASKS},
               tta_npzs={t: inp[f"{t}_tta"] for t in TASKS},
               thresholds={t: inp[f"{t}_thresholds"] for t in TASKS}, crf_yaml=inp.crf,
               reconcile_mode=snakemake.params.reconcile, use_tta=snakemake.params.tta,
               shards=snakemake.params.shards, shard=int(snakemake.wildcards.shard),
               out_npz=snakemake.output[0], threads=snakemake.threads)
