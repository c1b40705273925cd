"""The Kaggle submission csv (vocflow.submission.build_submission)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.submission import build_submission

setup_logging(snakemake.log[0])
build_submission(test_cache_dir=Path(snakemake.input.cache[0]).parent,
                 classification_npz=snakemake.input.classification,
                 segmentation_npz=snakemake.input.segmentation, out_csv=snakemake.output[0])
