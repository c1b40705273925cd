"""One attack job: a task's selected model × one method (vocflow.attacks.run.run_attack)."""

from pathlib import Path

from vocflow.attacks.run import run_attack
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
run_attack(train_dir=Path(snakemake.input.train[0]).parent,
           test_dir=Path(snakemake.input.test[0]).parent, folds_csv=snakemake.input.folds,
           selection_yaml=snakemake.input.selection, settings=snakemake.params.settings,
           out_csv=snakemake.output.table, panel_png=snakemake.output.panel,
           threads=snakemake.threads,
           crf_yaml=snakemake.input.crf[0] if snakemake.input.crf else None)
