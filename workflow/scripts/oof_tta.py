"""Flip-TTA re-prediction of the OOF images (vocflow.predict.predict_oof_tta)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.predict import predict_oof_tta

setup_logging(snakemake.log[0])
predict_oof_tta(train_cache_dir=Path(snakemake.input.cache[0]).parent,
                selection_yaml=snakemake.input.selection, out_path=snakemake.output[0],
                batch_size=snakemake.params.batch_size, threads=snakemake.threads)
