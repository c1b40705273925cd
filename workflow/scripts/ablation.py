"""Gather the ablation shards into results/ablation.csv (vocflow.ablation.write_ablation)."""

from pathlib import Path

from vocflow.ablation import write_ablation
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
write_ablation(shard_npzs=list(snakemake.input.shards),
               train_cache_dir=Path(snakemake.input.cache[0]).parent, crf_yaml=snakemake.input.crf,
               test_yaml=snakemake.input.test, use_tta=snakemake.params.tta,
               out_csv=snakemake.output.table, oof_submission_csv=snakemake.output.oof_submission,
               refit=snakemake.params.refit)
