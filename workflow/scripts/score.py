"""Kaggle scores of ours and the random submission (vocflow.submission.score_against_cache);
input.selections (the tasks' selected.yaml) mark the scores of a partial grid."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.submission import score_against_cache

setup_logging(snakemake.log[0])
score_against_cache(submissions={"ours": snakemake.input.ours, "random": snakemake.input.random},
                    test_cache_dir=Path(snakemake.input.cache[0]).parent,
                    out_yaml=snakemake.output[0],
                    selections=list(snakemake.input.selections))
