"""Refit the selected cell's recipe on every training image (vocflow.train.refit_cell)."""

from pathlib import Path

from vocflow.artifacts import Selection
from vocflow.logs import setup_logging
from vocflow.train import refit_cell

setup_logging(snakemake.log[0], append=True)  # a resumed job keeps the killed attempt's log
selection = Selection.read(snakemake.input.selection)
refit_cell(cache_dir=Path(snakemake.input.cache[0]).parent,
           metrics_csvs=list(snakemake.input.metrics),
           settings=snakemake.params.settings[f"{selection.model}/{selection.loss}"],
           seed=int(snakemake.wildcards.seed), checkpoint_path=snakemake.output.checkpoint,
           metrics_path=snakemake.output.metrics, threads=snakemake.threads,
           state_dir=snakemake.params.state_dir, state_root=snakemake.params.state_root)
