"""Score the random baseline on one fold (vocflow.baseline.baseline_cell)."""

from pathlib import Path

from vocflow.baseline import baseline_cell
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
baseline_cell(
    Path(snakemake.input.cache[0]).parent,
    snakemake.input.folds,
    int(snakemake.wildcards.fold),
    snakemake.wildcards.task,
    snakemake.params.seed,
    metrics_path=snakemake.output.metrics,
    oof_path=snakemake.output.oof,
)
