"""The Kaggle submission csv (vocflow.submission.build_submission); input.selections (the tasks'
selected.yaml) let it warn when they come from a partial grid."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.submission import build_submission

setup_logging(snakemake.log[0])
build_submission(test_cache_dir=Path(snakemake.input.cache[0]).parent,
                 classification_npz=snakemake.input.classification,
                 segmentation_npz=snakemake.input.segmentation, out_csv=snakemake.output[0],
                 selections=list(snakemake.input.selections))
