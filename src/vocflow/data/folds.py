"""The fold table (results/data/folds.csv) read back: each image's fold, one fold's split.

Assigning the folds is vocflow.data.stratify: its scikit-learn import (~0.7 CPU-s) is paid
by the folds job only, not by every training, attack and report job that reads the table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vocflow.errors import DataError, reading, rebuild


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
