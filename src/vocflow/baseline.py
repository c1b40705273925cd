"""The ``random`` baseline: predictions drawn from the training split's class frequencies.

Classification draws each label with its training label rate; segmentation draws each pixel's
class from the training pixel rates. It sits on the leaderboard so every score has its floor.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vocflow.artifacts import BASELINE_LOSS, BASELINE_MODEL, PROB_SCALE, write_metrics, write_oof
from vocflow.data.cache import Cache, load_cache
from vocflow.data.folds import fold_split
from vocflow.evaluation import split_scores

log = logging.getLogger(__name__)


def label_rates(cache: Cache, idx: np.ndarray) -> np.ndarray:
    """(C,) fraction of images ``idx`` that contain each class."""
    return cache.labels[idx].mean(axis=0)


def pixel_rates(cache: Cache, idx: np.ndarray) -> np.ndarray:
    """(K,) fraction of non-void pixels of images ``idx`` per class, background included."""
    counts = cache.class_pixel_counts(idx)
    return counts / max(counts.sum(), 1)


def draw(task: str, cache: Cache, train_idx: np.ndarray, shapes: list[tuple[int, ...]],
         rng: np.random.Generator) -> list[np.ndarray]:
    """One random prediction per shape: label vectors (C,) or masks (H, W)."""
    if task == "classification":
        rates = label_rates(cache, train_idx)
        return [rng.random(len(rates)) < rates for _ in shapes]
    rates = pixel_rates(cache, train_idx)
    return [rng.choice(len(rates), size=shape, p=rates).astype(np.uint8) for shape in shapes]


def baseline_cell(cache_dir: str | Path, folds_csv: str | Path, fold: int, task: str, seed: int,
                  metrics_path: str | Path, oof_path: str | Path) -> None:
    """Score the random baseline on validation fold ``fold`` and write its metrics and OOF."""
    cache = load_cache(cache_dir)
    train_idx, val_idx = fold_split(folds_csv, cache.ids, fold)
    rng = np.random.default_rng(seed + fold)
    size = cache.image_size
    if task == "classification":
        preds = np.stack(draw(task, cache, train_idx, [()] * len(val_idx), rng))
        probs = np.tile(label_rates(cache, train_idx).astype(np.float32), (len(val_idx), 1))
    else:
        preds = np.stack(draw(task, cache, train_idx, [(size, size)] * len(val_idx), rng))
        rates = np.round(pixel_rates(cache, train_idx) * PROB_SCALE).astype(np.uint8)
        probs = np.broadcast_to(rates[None, :, None, None],
                                (len(val_idx), len(rates), size, size)).copy()
    scores = split_scores(task, cache, val_idx, probs, preds)
    log.info("random baseline %s fold %d: %s", task, fold, scores)
    row = {"epoch": 0, "train_loss": np.nan, "val_loss": np.nan,
           **{f"val_{k}": v for k, v in scores.items()}, "lr": np.nan, "seconds": 0.0}
    cell = {"task": task, "model": BASELINE_MODEL, "loss": BASELINE_LOSS}
    write_metrics(metrics_path, [row], cell, fold, next(iter(scores)))
    write_oof(oof_path, [cache.ids[i] for i in val_idx], val_idx, probs)


def random_test_predictions(train_cache: Cache, test_cache: Cache,
                            seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Random labels (N, C) and original-size masks for the test split, from all training data."""
    rng = np.random.default_rng(seed)
    every = np.arange(len(train_cache))
    labels = np.stack(draw("classification", train_cache, every, [()] * len(test_cache), rng))
    shapes = [(int(h), int(w)) for h, w in zip(test_cache.heights, test_cache.widths, strict=True)]
    masks = draw("segmentation", train_cache, every, shapes, rng)
    return labels.astype(np.uint8), masks
