"""Fold assignment: stratified, deterministic, complete, with clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from vocflow.data.folds import read_folds
from vocflow.data.stratify import assign_folds, write_folds
from vocflow.errors import ConfigError, DataError


def labels(n: int = 200, c: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rates = np.linspace(0.05, 0.5, c)
    return (rng.random((n, c)) < rates).astype(np.uint8)


def test_every_sample_gets_one_fold_and_folds_are_balanced() -> None:
    y = labels()
    fold = assign_folds(y, 5, seed=0)
    assert set(fold) == set(range(5))
    assert np.bincount(fold).max() - np.bincount(fold).min() <= 2
    # Iterative stratification: each class's positives spread evenly (within 2 per fold).
    per_fold = np.stack([y[fold == k].sum(axis=0) for k in range(5)])
    assert (per_fold.max(axis=0) - per_fold.min(axis=0)).max() <= 2


def test_deterministic_from_seed() -> None:
    y = labels()
    assert np.array_equal(assign_folds(y, 4, 7), assign_folds(y, 4, 7))
    assert not np.array_equal(assign_folds(y, 4, 7), assign_folds(y, 4, 8))


def test_errors() -> None:
    with pytest.raises(ConfigError, match="folds must be >= 2"):
        assign_folds(labels(), 1, 0)
    with pytest.raises(DataError, match="cannot fill 5 folds"):
        assign_folds(labels(n=3), 5, 0)


def test_write_and_read_round_trip(tmp_path) -> None:
    y, ids = labels(30), [f"{i:03d}" for i in range(30)]
    write_folds(ids, y, 3, 0, tmp_path / "folds.csv")
    assert np.array_equal(read_folds(tmp_path / "folds.csv", ids), assign_folds(y, 3, 0))
    with pytest.raises(DataError, match="forcerun folds"):
        read_folds(tmp_path / "folds.csv", ids[::-1])
