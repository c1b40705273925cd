"""Score the OOF submission on the training labels (vocflow.submission.score_oof)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.submission import score_oof

setup_logging(snakemake.log[0])
score_oof(oof_submission_csv=snakemake.input.submission,
          train_cache_dir=Path(snakemake.input.cache[0]).parent, out_yaml=snakemake.output[0])
