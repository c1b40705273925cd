"""Assign multilabel-stratified folds (vocflow.data.folds.write_folds)."""

from pathlib import Path

from vocflow.data.cache import load_cache
from vocflow.data.folds import write_folds
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
cache = load_cache(Path(snakemake.input[0]).parent)
write_folds(cache.ids, cache.labels, snakemake.params.folds, snakemake.params.seed,
            snakemake.output[0])
