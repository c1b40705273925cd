"""Re-predict each fold's validation images with flip TTA (vocflow.predict.predict_oof_tta)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.predict import predict_oof_tta

setup_logging(snakemake.log[0])
predict_oof_tta(Path(snakemake.input.cache[0]).parent, snakemake.input.selection,
                snakemake.output[0], batch_size=snakemake.params.batch_size,
                threads=snakemake.threads)
