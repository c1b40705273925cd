"""Before/after CRF panels for the report (vocflow.crf.crf_panels)."""

from pathlib import Path

from vocflow.crf import crf_panels
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
crf_panels(snakemake.input.selection, Path(snakemake.input.cache[0]).parent,
           snakemake.input.thresholds, snakemake.input.crf, snakemake.params.n,
           snakemake.params.seed, snakemake.output[0])
