"""Predict the test split with the selected cell (vocflow.predict.predict_test)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.predict import predict_test

setup_logging(snakemake.log[0])
predict_test(
    Path(snakemake.input.cache[0]).parent,
    snakemake.input.selection,
    snakemake.output[0],
    batch_size=snakemake.params.batch_size,
    tta=snakemake.params.tta,
    threads=snakemake.threads,
)
