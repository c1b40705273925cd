"""Multilabel-stratified K-fold assignment, deterministic from the seed.

Iterative stratification (Sechidis et al., 2011) from the maintained ``iterative-stratification``
package keeps every class's prevalence close to equal across folds; a plain KFold would leave
rare classes absent from some validation folds.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

from vocflow.atomic import write_csv
from vocflow.data.cache import load_cache
from vocflow.errors import ConfigError, DataError, reading, rebuild

log = logging.getLogger(__name__)


def assign_folds(labels: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Return the fold index (N,) of each sample given its (N, C) 0/1 labels."""
    n = len(labels)
    if n_folds < 2:
        raise ConfigError(f"folds must be >= 2 (got {n_folds}); set 'folds' in config/config.yaml")
    if n < n_folds:
        raise DataError(f"{n} labelled images cannot fill {n_folds} folds; lower 'folds' in config")
    splitter = MultilabelStratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold = np.full(n, -1, dtype=np.int64)
    for k, (_, val_idx) in enumerate(splitter.split(np.zeros(n), labels)):
        fold[val_idx] = k
    return fold


def write_folds(ids: list[str], labels: np.ndarray, n_folds: int, seed: int,
                out: str | Path) -> None:
    fold = assign_folds(labels, n_folds, seed)
    write_csv(out, pd.DataFrame({"Id": ids, "fold": fold}))
    log.info("wrote %d folds for %d images to %s", n_folds, len(ids), out)


def folds_for_cache(cache_dir: str | Path, n_folds: int, seed: int, out: str | Path) -> None:
    """The folds rule: assign the training cache's images to ``n_folds`` folds."""
    cache = load_cache(cache_dir)
    write_folds(cache.ids, cache.labels, n_folds, seed, out)


def read_folds(path: str | Path, ids: list[str]) -> np.ndarray:
    """Fold index (N,) aligned with ``ids`` (the cache order); fails if the two disagree."""
    with reading(path, "folds csv", rebuild(path), (KeyError,)):
        frame = pd.read_csv(path, dtype={"Id": str})
        folds = frame["fold"].to_numpy(dtype=np.int64)
    if list(frame["Id"]) != list(ids):
        raise DataError(f"{path} does not match the training cache; "
                        "re-run: snakemake --forcerun folds")
    return folds


def fold_split(folds_csv: str | Path, ids: list[str], fold: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) of fold ``fold``: training uses every other fold."""
    folds = read_folds(folds_csv, ids)
    train_idx, val_idx = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
    if not len(val_idx) or not len(train_idx):
        raise DataError(f"fold {fold} of {folds_csv} has an empty train or validation part; "
                        "check 'folds' in config/config.yaml")
    return train_idx, val_idx
