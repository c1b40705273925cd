"""Test probabilities of the selected cell's fold ensemble and refits
(vocflow.predict.predict_probs)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.predict import predict_probs

setup_logging(snakemake.log[0])
predict_probs(cache_dir=Path(snakemake.input.cache[0]).parent,
              selection_yaml=snakemake.input.selection, out_path=snakemake.output.probs,
              batch_size=snakemake.params.batch_size, tta=snakemake.params.tta,
              threads=snakemake.threads, per_fold=snakemake.params.per_fold,
              refit_checkpoints=list(snakemake.input.refit),
              with_folds=snakemake.params.with_folds,
              predictor_yaml=snakemake.output.predictor, reconcile=snakemake.params.reconcile)
