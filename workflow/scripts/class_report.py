"""Per-class precision/recall/F1/ROC-AUC table (vocflow.class_report.write_class_report)."""

from pathlib import Path

from vocflow.class_report import write_class_report
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
write_class_report(selection_yaml=snakemake.input.selection,
                   train_cache_dir=Path(snakemake.input.cache[0]).parent,
                   thresholds_yaml=snakemake.input.thresholds, out_csv=snakemake.output[0])
