"""Per-class thresholds on the selected cell's OOF predictions (vocflow.thresholds)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.thresholds import tune_thresholds

setup_logging(snakemake.log[0])
tune_thresholds(snakemake.wildcards.task, snakemake.input.selection,
                Path(snakemake.input.cache[0]).parent, snakemake.params.grid,
                snakemake.output.thresholds, snakemake.output.curves,
                objective=snakemake.params.objective)
