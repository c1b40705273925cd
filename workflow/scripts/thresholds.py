"""Per-class thresholds of one task on OOF predictions (vocflow.thresholds.tune_thresholds)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.thresholds import tune_thresholds

setup_logging(snakemake.log[0])
tune_thresholds(task=snakemake.wildcards.task, selection_yaml=snakemake.input.selection,
                train_cache_dir=Path(snakemake.input.cache[0]).parent, grid=snakemake.params.grid,
                yaml_path=snakemake.output.thresholds, curves_csv=snakemake.output.curves,
                objective=snakemake.params.objective)
