"""Evaluation metrics for classification and segmentation, in two steps: count, then score.

Counts (confusion matrices, multilabel tp/fp/fn) add up across batches and images, so callers
accumulate them and derive scores once at the end; a score averaged over batches would weight
small batches wrongly.

Conventions:

* ``K`` is the number of segmentation classes including background 0 (21 for VOC); ``C`` is the
  number of object classes (20), i.e. segmentation labels ``1..C`` and classification columns
  ``0..C-1`` (column ``c`` is segmentation label ``c + 1``).
* A score that is 0/0 (a class absent from both truth and prediction) is NaN and is left out of
  macro means: such a class tells nothing about the model.
* The Kaggle metric is the exception: its per-row Dice of two empty sets is 1.0, as the
  competition defines it.

This module is pure numpy; from vocflow it takes only the VOID label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from vocflow.artifacts import VOID

# --------------------------------------------------------------------------------------------
# Segmentation: confusion matrix and scores derived from it
# --------------------------------------------------------------------------------------------


def _require_integer(name: str, array: np.ndarray) -> None:
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")


def confusion_matrix(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int = VOID
) -> np.ndarray:
    """Count (truth, prediction) pairs over all pixels.

    pred, target: integer arrays of the same shape, e.g. (H, W) or (B, H, W).
    Returns (K, K) int64 with K = num_classes; rows are truth, columns prediction. Pixels whose
    target is ``ignore_index`` are skipped (their prediction may be anything in range).
    """
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} != target shape {target.shape}")
    _require_integer("pred", pred)
    _require_integer("target", target)
    keep = target != ignore_index
    # int64 before arithmetic: uint8 labels would overflow in target * K + pred.
    p = pred[keep].astype(np.int64, copy=False)
    t = target[keep].astype(np.int64, copy=False)
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"pred values must lie in [0, {num_classes}), got [{p.min()}, {p.max()}]")
    if t.size and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(
            f"target values must lie in [0, {num_classes}) or equal {ignore_index}, "
            f"got [{t.min()}, {t.max()}]"
        )
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def _cm_counts(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class (tp, fp, fn), each (K,) float64, from a (K, K) confusion matrix."""
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square (K, K), got {cm.shape}")
    tp = np.diag(cm)
    return tp, cm.sum(axis=0) - tp, cm.sum(axis=1) - tp


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, NaN where den == 0 (no warning)."""
    out = np.full(np.shape(num), np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def iou_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class IoU tp / (tp + fp + fn), (K,); NaN for a class absent from truth and prediction."""
    tp, fp, fn = _cm_counts(cm)
    return _ratio(tp, tp + fp + fn)


def dice_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class Dice 2tp / (2tp + fp + fn), (K,); NaN for a class absent from both."""
    tp, fp, fn = _cm_counts(cm)
    return _ratio(2 * tp, 2 * tp + fp + fn)


def _nanmean(values: np.ndarray) -> float:
    """Mean of the finite entries; NaN (without a RuntimeWarning) when there are none."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def mean_iou(cm: np.ndarray, exclude: Iterable[int] = ()) -> float:
    """Mean IoU over classes present in truth or prediction, skipping the indices in ``exclude``.

    cm: (K, K). ``exclude=(0,)`` gives the foreground-only mean.
    """
    iou = iou_from_confusion(cm)
    iou[list(exclude)] = np.nan
    return _nanmean(iou)


# --------------------------------------------------------------------------------------------
# Multilabel classification
# --------------------------------------------------------------------------------------------


def _as_binary(name: str, array: np.ndarray) -> np.ndarray:
    """Return ``array`` as bool after checking every value is 0 or 1 (or False/True)."""
    array = np.asarray(array)
    if array.dtype == np.bool_:
        return array
    if not np.issubdtype(array.dtype, np.number) or not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must be binary (bool or 0/1), got values outside {{0, 1}}")
    return array.astype(bool)


@dataclass(frozen=True)
class MultilabelCounts:
    """Per-class counts over samples, each (C,) int64. Add two to accumulate batches."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    def __add__(self, other: MultilabelCounts) -> MultilabelCounts:
        return MultilabelCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


def multilabel_counts(pred: np.ndarray, target: np.ndarray) -> MultilabelCounts:
    """Count true positives, false positives and false negatives per class.

    pred, target: (N, C) bool or 0/1.
    """
    p, t = _as_binary("pred", pred), _as_binary("target", target)
    if p.shape != t.shape or p.ndim != 2:
        raise ValueError(f"pred {p.shape} and target {t.shape} must both be (N, C)")
    return MultilabelCounts(
        tp=(p & t).sum(axis=0, dtype=np.int64),
        fp=(p & ~t).sum(axis=0, dtype=np.int64),
        fn=(~p & t).sum(axis=0, dtype=np.int64),
    )


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Per-class F1 = 2tp / (2tp + fp + fn), (C,).

    A class with no positives in truth or prediction has 0/0 and gets NaN, so ``macro_f1``
    leaves it out rather than rewarding (1) or punishing (0) a class that never came up.
    """
    tp, fp, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn))
    return _ratio(2 * tp, 2 * tp + fp + fn)


def macro_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    """Mean per-class F1 over classes seen in truth or prediction; NaN if there are none."""
    return _nanmean(f1_from_counts(tp, fp, fn))


def average_precision(scores: np.ndarray, target: np.ndarray) -> float:
    """Non-interpolated average precision, sum_k (R_k - R_{k-1}) P_k, as sklearn computes it.

    scores: (N,) float, higher = more likely positive; target: (N,) 0/1.
    Tied scores form one threshold (all of them enter together), as in sklearn's
    ``precision_recall_curve``. Returns NaN when target has no positives (recall undefined).
    """
    scores = np.asarray(scores, dtype=np.float64)
    t = _as_binary("target", target)
    if scores.shape != t.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and target {t.shape} must both be (N,)")
    n_pos = int(t.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], t[order]
    # Last index of each run of equal scores: a threshold admits all tied samples at once.
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(y)[last]
    precision = tps / (last + 1)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def per_column(score: Callable[[np.ndarray, np.ndarray], float], scores: np.ndarray,
               target: np.ndarray) -> np.ndarray:
    """``score`` of each column, (C,). scores, target: (N, C)."""
    scores, target = np.asarray(scores), np.asarray(target)
    if scores.shape != target.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and target {target.shape} must both be (N, C)")
    return np.array([score(scores[:, c], target[:, c]) for c in range(scores.shape[1])])


def per_class_average_precision(scores: np.ndarray, target: np.ndarray) -> np.ndarray:
    """AP of each column, (C,); NaN for columns with no positives. scores, target: (N, C)."""
    return per_column(average_precision, scores, target)


def mean_average_precision(scores: np.ndarray, target: np.ndarray) -> float:
    """Macro mAP over the classes that have at least one positive. scores, target: (N, C)."""
    return _nanmean(per_class_average_precision(scores, target))


def roc_auc(scores: np.ndarray, target: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties count 1/2.

    scores: (N,) float; target: (N,) 0/1. The Mann-Whitney U statistic from average ranks (ties
    share their rank), which equals sklearn's trapezoidal ``roc_auc_score``; NaN when target
    holds one class only (sklearn raises there, and one such class must not stop a macro mean).
    """
    scores = np.asarray(scores, dtype=np.float64)
    t = _as_binary("target", target)
    if scores.shape != t.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and target {t.shape} must both be (N,)")
    n_pos = int(t.sum())
    n_neg = t.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    # Average 1-based rank of each run of equal scores.
    starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
    ends = np.r_[starts[1:], s.size]
    ranks = np.empty(s.size)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    u = ranks[t].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def per_class_roc_auc(scores: np.ndarray, target: np.ndarray) -> np.ndarray:
    """ROC-AUC of each column, (C,); NaN for columns with a single class. scores, target: (N, C)."""
    return per_column(roc_auc, scores, target)


def macro_roc_auc(scores: np.ndarray, target: np.ndarray) -> float:
    """Macro ROC-AUC over the classes with both positives and negatives (the original study's
    headline classification metric). scores, target: (N, C)."""
    return _nanmean(per_class_roc_auc(scores, target))


# --------------------------------------------------------------------------------------------
# The Kaggle competition metric: mean over submission rows of a whole-row Dice
# --------------------------------------------------------------------------------------------


def dice_coefficient(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice 2|A∩B| / (|A| + |B|) of two binary arrays of the same (any) shape.

    Both empty gives 1.0 (the competition's rule: predicting nothing where there is nothing is
    perfect), unlike the NaN of ``dice_from_confusion``.
    """
    a, b = _as_binary("pred", pred), _as_binary("truth", truth)
    if a.shape != b.shape:
        raise ValueError(f"pred shape {a.shape} != truth shape {b.shape}")
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int((a & b).sum()) / total


def segmentation_stack(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Binary per-class stack of a label mask: (H, W) -> (C, H, W) bool, C = num_classes.

    Plane c is ``mask == c + 1``: background 0 has no plane, and void 255 equals no c + 1, so a
    void pixel counts as "not this class" in every plane (in truth and prediction alike).
    """
    mask = np.asarray(mask)
    _require_integer("mask", mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    bad = ((mask > num_classes) & (mask != VOID)) | (mask < 0)
    if bad.any():
        raise ValueError(f"mask values must be in 0..{num_classes} or {VOID}")
    labels = np.arange(1, num_classes + 1, dtype=np.int64)[:, None, None]
    return mask[None, :, :] == labels


def kaggle_segmentation_dice(
    pred_mask: np.ndarray, true_mask: np.ndarray, num_classes: int
) -> float:
    """Kaggle Dice of one segmentation row: Dice of the two (C, H, W) stacks as a whole.

    pred_mask, true_mask: (H, W) labels; num_classes = C (object classes, background excluded).
    """
    return dice_coefficient(
        segmentation_stack(pred_mask, num_classes), segmentation_stack(true_mask, num_classes)
    )


def kaggle_classification_dice(pred_labels: np.ndarray, true_labels: np.ndarray) -> float:
    """Kaggle Dice of one classification row: pred_labels, true_labels (C,) 0/1."""
    pred_labels, true_labels = np.asarray(pred_labels), np.asarray(true_labels)
    if pred_labels.ndim != 1:
        raise ValueError(f"labels must be (C,), got shape {pred_labels.shape}")
    return dice_coefficient(pred_labels, true_labels)
