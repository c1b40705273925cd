"""Write the Kaggle submission (vocflow.submission.build_submission)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.submission import build_submission

setup_logging(snakemake.log[0])
build_submission(Path(snakemake.input.cache[0]).parent, snakemake.input.classification,
                 snakemake.input.segmentation, snakemake.output[0])
