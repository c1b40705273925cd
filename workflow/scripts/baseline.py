"""The random baseline on one fold (vocflow.baseline.baseline_cell)."""

from pathlib import Path

from vocflow.baseline import baseline_cell
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
baseline_cell(cache_dir=Path(snakemake.input.cache[0]).parent, folds_csv=snakemake.input.folds,
              fold=int(snakemake.wildcards.fold), task=snakemake.wildcards.task,
              seed=snakemake.params.seed, metrics_path=snakemake.output.metrics,
              oof_path=snakemake.output.oof)
