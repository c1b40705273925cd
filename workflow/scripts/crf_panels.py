"""Before/after CRF panels for the report (vocflow.report.crf_panels.write_crf_panels)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.report.crf_panels import write_crf_panels

setup_logging(snakemake.log[0])
write_crf_panels(selection_yaml=snakemake.input.selection,
                 train_cache_dir=Path(snakemake.input.cache[0]).parent,
                 thresholds_yaml=snakemake.input.thresholds, crf_yaml=snakemake.input.crf,
                 n=snakemake.params.n, seed=snakemake.params.seed, out_dir=snakemake.output[0])
