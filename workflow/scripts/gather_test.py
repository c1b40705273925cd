"""Assemble the test shards into the prediction files (vocflow.predict.gather_test)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.predict import gather_test

setup_logging(snakemake.log[0])
out = snakemake.output
gather_test(shard_npzs=list(snakemake.input.shards),
            test_cache_dir=Path(snakemake.input.cache[0]).parent,
            classification_probs=snakemake.input.classification,
            out_classification=out.classification, out_segmentation=out.segmentation,
            out_yaml=out.summary)
