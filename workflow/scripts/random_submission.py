"""The random baseline's submission (vocflow.submission.build_random_submission)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.submission import build_random_submission

setup_logging(snakemake.log[0])
build_random_submission(train_cache_dir=Path(snakemake.input.train[0]).parent,
                        test_cache_dir=Path(snakemake.input.test[0]).parent,
                        seed=snakemake.params.seed, out_csv=snakemake.output[0])
