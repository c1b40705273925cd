"""Gather the ablation shards into results/ablation.csv (vocflow.ablation.write_ablation)."""

from pathlib import Path

from vocflow.ablation import write_ablation
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
inp = snakemake.input
write_ablation(list(inp.shards), Path(inp.cache[0]).parent, inp.crf, inp.test,
               snakemake.params.tta, snakemake.output.table, snakemake.output.oof_submission)
