"""Multilabel-stratified folds of the training cache (vocflow.data.stratify.folds_for_cache)."""

from pathlib import Path

from vocflow.data.stratify import folds_for_cache
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
folds_for_cache(cache_dir=Path(snakemake.input[0]).parent, n_folds=snakemake.params.folds,
                seed=snakemake.params.seed, out=snakemake.output[0])
