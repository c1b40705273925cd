"""Train one grid cell (vocflow.train.train_cell)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.train import train_cell

setup_logging(snakemake.log[0], append=True)  # a resumed job keeps the killed attempt's log
train_cell(cache_dir=Path(snakemake.input.cache[0]).parent, folds_csv=snakemake.input.folds,
           fold=int(snakemake.wildcards.fold), settings=snakemake.params.settings,
           checkpoint_path=snakemake.output.checkpoint, metrics_path=snakemake.output.metrics,
           oof_path=snakemake.output.oof, threads=snakemake.threads,
           state_dir=snakemake.params.state_dir, state_root=snakemake.params.state_root)
