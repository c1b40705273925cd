"""Multilabel-stratified K-fold assignment, deterministic from the seed.

Iterative stratification (Sechidis et al., 2011) from the maintained ``iterative-stratification``
package keeps every class's prevalence close to equal across folds; a plain KFold would leave
rare classes absent from some validation folds. vocflow.data.folds reads the table back.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

from vocflow.atomic import write_csv
from vocflow.data.cache import load_cache
from vocflow.errors import ConfigError, DataError

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
