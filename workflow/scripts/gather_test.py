"""Gather the test shards into the prediction files (vocflow.predict.gather_test)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.predict import gather_test

setup_logging(snakemake.log[0])
out = snakemake.output
gather_test(list(snakemake.input.shards), Path(snakemake.input.cache[0]).parent,
            snakemake.input.classification, out.classification, out.segmentation, out.summary)
