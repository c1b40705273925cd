"""Per-class decision thresholds tuned on out-of-fold (OOF) predictions of all folds together.

* Classification: class ``c`` is predicted when ``p_c >= t_c``; ``t_c`` maximises the class's F1
  over the OOF images (a class absent from truth and prediction scores 1, as Kaggle's Dice does).
* Segmentation (the original study's rule): a pixel takes the arg-max over the classes whose
  probability *exceeds* their threshold (``p_c > t_c``), else background 0. ``t_c`` maximises
  class ``c``'s Dice between its own candidate mask ``p_c > t`` and ``truth == c`` (void counts
  as "not c", as in the Kaggle stack), pooled over all pixels (``dice``) or as a mean per-image
  Dice (``image_dice``); see ``OBJECTIVES``. Classes are tuned independently, which is what makes
  one histogram per class enough. (Scoring an image without ``c`` anywhere as 1, Kaggle's rule
  for a whole row, is no objective per class: with ~90% of images lacking each class it drives
  every threshold up until correct masks vanish; on the synthetic OOF it cut Kaggle Dice by 0.11.)

Speed: instead of re-scanning the pixels once per threshold (``naive_segmentation_curves``), each
class is histogrammed once per image over its 256 quantised values (OOF probabilities are uint8,
p = q / scale); the pixel count above any threshold is then a suffix sum of that histogram. The
counts are the same integers the naive loop sums, so both pick identical thresholds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from vocflow import metrics
from vocflow.artifacts import Selection, class_names_for, dequantize, read_yaml
from vocflow.atomic import write_csv, write_yaml
from vocflow.data.cache import load_cache
from vocflow.errors import ConfigError, DataError, reading, rebuild
from vocflow.registry import Registry

log = logging.getLogger(__name__)


def make_grid(start: float, stop: float, steps: int) -> np.ndarray:
    """(T,) float64 thresholds ``linspace(start, stop, steps)`` inside [0, 1]."""
    if not 0.0 <= start <= stop <= 1.0 or steps < 1:
        raise ConfigError(f"threshold grid [{start}, {stop}] x {steps} must lie in [0, 1] with "
                          "steps >= 1; fix post.thresholds in config/config.yaml")
    return np.linspace(start, stop, steps, dtype=np.float64)


# --------------------------------------------------------------------------- counting


def _passes(values: np.ndarray, grid: np.ndarray, strict: bool) -> np.ndarray:
    """How many grid thresholds each value passes: ``p > t`` (strict) or ``p >= t``.

    Compared in float64 (searchsorted's common type), as ``p > np.float64(t)`` does.
    """
    return np.searchsorted(grid, np.asarray(values, np.float64), side="left" if strict else "right")


def _suffix_counts(hist: np.ndarray) -> np.ndarray:
    """(R, B) histogram -> (R, B + 1): column j counts the entries in bins >= j."""
    rev = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]
    return np.concatenate([rev, np.zeros((len(hist), 1), rev.dtype)], axis=1)


def _above(hist_q: np.ndarray, first_q: np.ndarray) -> np.ndarray:
    """(R, 256) histograms of quantised values -> (R, T) counts of values above each threshold."""
    return _suffix_counts(hist_q)[:, first_q]


def _first_above(scale: float, grid: np.ndarray) -> np.ndarray:
    """(T,) the smallest quantised value q with q / scale > t, per threshold t (256 if none)."""
    values = dequantize(np.arange(256), scale)
    return np.searchsorted(values.astype(np.float64), grid, side="right")


# --------------------------------------------------------------------------- classification


def classification_curves(probs: np.ndarray, labels: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(C, T) F1 of each class at each threshold (``p >= t``). probs (N, C) float, labels 0/1."""
    probs, labels = np.asarray(probs), np.asarray(labels).astype(bool)
    if probs.shape != labels.shape or probs.ndim != 2:
        raise DataError(f"OOF probabilities {probs.shape} and labels {labels.shape} must both be "
                        "(N, C); re-run the selected cell's training")
    n_thr = len(grid)
    passes = _passes(probs, grid, strict=False)  # (N, C) in 0..T
    # Bin j + 1 and above pass threshold j; label-0 images go to bin 0, which passes none.
    predicted = _suffix_counts(_hist_rows(passes.T, n_thr + 1))[:, 1:-1]  # (C, T)
    tp = _suffix_counts(_hist_rows(np.where(labels, passes, 0).T, n_thr + 1))[:, 1:-1]
    positives = labels.sum(axis=0)[:, None]
    f1 = metrics.f1_from_counts(tp, predicted - tp, positives - tp)
    return np.where(np.isnan(f1), 1.0, f1)


def _hist_rows(bins: np.ndarray, n_bins: int) -> np.ndarray:
    """(R, M) integer bins -> (R, n_bins) per-row histograms in one bincount."""
    rows = np.arange(len(bins), dtype=np.int64)[:, None] * n_bins
    return np.bincount((rows + bins).ravel(), minlength=len(bins) * n_bins).reshape(-1, n_bins)


def apply_classification(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(N, C) 0/1 uint8 labels: ``p_c >= t_c``."""
    return (np.asarray(probs, np.float64) >= np.asarray(thresholds, np.float64)).astype(np.uint8)


# --------------------------------------------------------------------------- segmentation


def segmentation_curves(probs: np.ndarray, masks: np.ndarray, grid: np.ndarray,
                        scale: float = 255, objective: str = "dice") -> np.ndarray:
    """(K, T) score of each class's candidate mask ``p_c > t`` at each threshold (module doc).

    probs: (N, K, H, W) uint8 quantised (p = q / scale); masks: (N, H, W) in 0..K-1 or void;
    objective: a name in ``OBJECTIVES``.
    """
    probs, masks = np.asarray(probs), np.asarray(masks)
    _check_segmentation(probs, masks)
    score = OBJECTIVES.build(objective)
    n, k = probs.shape[:2]
    first_q = _first_above(scale, grid)
    flat = np.ascontiguousarray(probs).reshape(n, k, -1)
    truth = masks.reshape(n, -1)
    curves = np.empty((k, len(grid)), np.float64)
    for c in range(k):  # one histogram pass per class over all its pixels
        every, positive = _class_histograms(flat[:, c], (truth == c).view(np.uint8))
        tp = _above(positive, first_q)  # (N, T)
        curves[c] = score(tp, _above(every, first_q) + positive.sum(axis=1)[:, None])
    return curves


def _check_segmentation(probs: np.ndarray, masks: np.ndarray) -> None:
    if probs.dtype != np.uint8 or probs.ndim != 4 or masks.shape != (probs.shape[0],
                                                                      *probs.shape[2:]):
        raise DataError(f"segmentation OOF must be uint8 (N, K, H, W) with masks (N, H, W); got "
                        f"{probs.dtype} {probs.shape} and {masks.shape}; re-run its training")


def _class_histograms(q: np.ndarray, is_class: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image value counts of one class plane, over all pixels and over its true pixels.

    q, is_class: (N, M) uint8 (rows may be strided views); returns two (N, 256) int64. One
    OpenCV 3-D histogram (value x image x truth flag) per chunk of <= 256 images: a single uint8
    pass, ~2x faster than ``np.bincount`` (which first widens every value to int64) and than a
    call per image. float32 counts are exact below 2**24 pixels per image.
    """
    every, positive = np.empty((2, len(q), 256), np.int64)
    for lo in range(0, len(q), 256):
        m = min(256, len(q) - lo)
        image = np.repeat(np.arange(m, dtype=np.uint8)[:, None], q.shape[1], axis=1)
        hist = cv2.calcHist([q[lo:lo + m], image, is_class[lo:lo + m]], [0, 1, 2], None,
                            [256, m, 2], [0, 256, 0, m, 0, 2])  # (256, m, 2)
        every[lo:lo + m] = hist.sum(axis=2).T
        positive[lo:lo + m] = hist[:, :, 1].T
    return every, positive


def _pooled_dice(tp: np.ndarray, total: np.ndarray) -> np.ndarray:
    """(N, T) per-image counts -> (T,) Dice over all pixels of all images, 2 sum(tp) / sum(total).

    A class absent from truth and candidates everywhere scores 1 (nothing to get wrong).
    """
    num, den = 2 * tp.sum(axis=0), total.sum(axis=0)
    out = np.ones(den.shape, np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _image_dice(tp: np.ndarray, total: np.ndarray) -> np.ndarray:
    """(N, T) per-image counts -> (T,) mean per-image Dice over the images where the class is in
    truth or candidate (the others have 0/0 and say nothing); 1 where there are none.

    Reduced as (T, N) rows, so each threshold adds its images in the same order as a 1-D pass.
    """
    tp, total = np.ascontiguousarray(tp.T), np.ascontiguousarray(total.T)
    dice = np.zeros(total.shape, np.float64)
    np.divide(2.0 * tp, total, out=dice, where=total > 0)
    seen = (total > 0).sum(axis=1)
    out = np.ones(len(seen), np.float64)
    np.divide(dice.sum(axis=1), seen, out=out, where=seen > 0)
    return out


# Per-class objective of the segmentation thresholds (post.thresholds.objective). "dice" pools
# all OOF pixels; "image_dice" averages images, so a few large images weigh less.
OBJECTIVES: Registry[Callable[[np.ndarray, np.ndarray], np.ndarray]] = Registry(
    "threshold objective (post.thresholds.objective)")
OBJECTIVES.register("dice")(lambda: _pooled_dice)
OBJECTIVES.register("image_dice")(lambda: _image_dice)


def naive_segmentation_curves(probs: np.ndarray, masks: np.ndarray, grid: np.ndarray,
                              scale: float = 255, objective: str = "dice") -> np.ndarray:
    """Reference for tests and bench/thresholds.py: one full pass over the pixels per threshold."""
    probs, masks = np.asarray(probs), np.asarray(masks)
    score = OBJECTIVES.build(objective)
    p = dequantize(probs, scale)
    curves = np.empty((probs.shape[1], len(grid)), np.float64)
    for c in range(probs.shape[1]):
        truth = masks == c
        g = truth.sum(axis=(1, 2))
        for j, t in enumerate(grid):
            cand = p[:, c] > np.float64(t)
            inter, pred = (cand & truth).sum(axis=(1, 2)), cand.sum(axis=(1, 2))
            curves[c, j] = score(inter[:, None], (pred + g)[:, None])[0]
    return curves


def pick_thresholds(curves: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(K,) the grid value of each curve's maximum (the lowest threshold among ties)."""
    return np.asarray(grid)[np.argmax(curves, axis=1)]


def apply_segmentation(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(..., K, H, W) float probabilities -> (..., H, W) uint8 labels in 0..K-1.

    The arg-max over classes with ``p_c > t_c``; background 0 where no class qualifies.
    """
    probs = np.asarray(probs)
    t = np.asarray(thresholds, np.float64).reshape(-1, 1, 1)
    if t.shape[0] != probs.shape[-3] or probs.shape[-3] > 256:
        raise DataError(f"{t.shape[0]} thresholds for {probs.shape[-3]} classes; re-run the "
                        "thresholds rule for this selection")
    masked = np.where(probs > t, probs, -1.0)
    labels = masked.argmax(axis=-3)
    return np.where(masked.max(axis=-3) < 0, 0, labels).astype(np.uint8)


# --------------------------------------------------------------------------- OOF and files


def write_thresholds(thresholds: np.ndarray, curves: np.ndarray, grid: np.ndarray,
                     names: Sequence[str], header: dict[str, str], yaml_path: str | Path,
                     curves_csv: str | Path) -> None:
    """thresholds.yaml (header, per-class threshold and score) + threshold_curves.csv (a plot's
    data: class, threshold, score)."""
    best = curves.max(axis=1)
    write_yaml(yaml_path, {
        **header,
        "grid": {"start": float(grid[0]), "stop": float(grid[-1]), "steps": len(grid)},
        # Rounded for reading: linspace gives 0.6900000000000001; 1e-10 moves no decision.
        "thresholds": {n: round(float(t), 10) for n, t in zip(names, thresholds, strict=True)},
        "scores": {n: float(s) for n, s in zip(names, best, strict=True)},
    })
    frame = pd.DataFrame({"class": np.repeat(list(names), len(grid)),
                          "threshold": np.tile(grid, len(names)), "score": curves.ravel()})
    write_csv(curves_csv, frame)


def read_thresholds(path: str | Path, names: Sequence[str]) -> np.ndarray:
    """(len(names),) thresholds from thresholds.yaml, in ``names`` order."""
    table = read_yaml(path).get("thresholds") or {}
    missing = [n for n in names if n not in table]
    if missing:
        raise DataError(f"{path} has no threshold for {missing[0]}; {rebuild(path)}")
    with reading(path, "thresholds file", rebuild(path), (TypeError, ValueError)):
        values = np.array([float(table[n]) for n in names], np.float64)
    if ((values < 0) | (values > 1)).any():
        raise DataError(f"{path} holds thresholds outside [0, 1]; {rebuild(path)}")
    return values


def tune_thresholds(task: str, selection_yaml: str | Path, train_cache_dir: str | Path,
                    grid: Sequence[float], yaml_path: str | Path, curves_csv: str | Path,
                    objective: str = "dice") -> None:
    """The thresholds rule: tune on every fold's OOF of the selected cell, write both files."""
    selection = Selection.read(selection_yaml)
    oof, cache = selection.load_oof(), load_cache(train_cache_dir)
    values = make_grid(*grid)
    if task == "classification":
        probs = dequantize(oof["probs"], oof["scale"])
        curves = classification_curves(probs, cache.labels[oof["index"]], values)
    else:
        masks = np.asarray(cache.masks[oof["index"]])  # (N, S, S), the OOF probs' size
        curves = segmentation_curves(oof["probs"], masks, values, oof["scale"], objective)
    thresholds = pick_thresholds(curves, values)
    names = class_names_for(task, cache.class_names)
    cell = selection.cell
    rule = ("p_c >= t_c per class, t_c maximising F1" if task == "classification" else
            "arg-max over classes with p_c > t_c, else background; t_c maximising the "
            f"{objective} objective of p_c > t")
    write_thresholds(thresholds, curves, values, names, {"task": task, "cell": cell,
                                                         "rule": rule}, yaml_path, curves_csv)
    log.info("%s thresholds from %d OOF images of %s: mean best score %.4f", task,
             len(oof["ids"]), cell, float(curves.max(axis=1).mean()))
