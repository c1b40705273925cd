"""Score the submissions on the labelled test split (vocflow.submission.score_against_cache)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.submission import score_against_cache

setup_logging(snakemake.log[0])
score_against_cache({"ours": snakemake.input.ours, "random": snakemake.input.random},
                    Path(snakemake.input.cache[0]).parent, snakemake.output[0])
