"""Score the OOF submission against the training labels (vocflow.submission.score_oof)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.submission import score_oof

setup_logging(snakemake.log[0])
score_oof(snakemake.input.submission, Path(snakemake.input.cache[0]).parent, snakemake.output[0])
