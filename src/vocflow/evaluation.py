"""Task scores from predictions, shared by training, the random baseline and the report.

Thin wrappers over the pure functions in ``vocflow.metrics``: counts first, scores second.
Torch-free, so the aggregation jobs that import it (leaderboard, select, submission, score)
do not pay torch's ~1 CPU-s import; the per-batch tally of training is vocflow.epoch_scores.
"""

from __future__ import annotations

import numpy as np

from vocflow import metrics
from vocflow.data.cache import Cache

# The metric each task reports, in the column order of metrics.csv and the leaderboard.
TASK_METRICS = {
    "classification": ("map", "f1", "kaggle", "auc"),
    "segmentation": ("miou", "dice", "kaggle"),
}


def classification_scores(probs: np.ndarray, labels: np.ndarray,
                          preds: np.ndarray | None = None) -> dict[str, float]:
    """probs (N, C) in [0, 1]; labels (N, C) 0/1; preds (N, C) 0/1, default probs >= 0.5.

    ``auc`` is the macro ROC-AUC (the original study's headline classification metric)."""
    preds = (probs >= 0.5) if preds is None else preds.astype(bool)
    counts = metrics.multilabel_counts(preds, labels)
    per_row = [metrics.kaggle_classification_dice(p, t) for p, t in zip(preds, labels, strict=True)]
    return {
        "map": float(metrics.mean_average_precision(probs, labels)),
        "f1": float(metrics.macro_f1(counts.tp, counts.fp, counts.fn)),
        "kaggle": float(np.mean(per_row)),
        "auc": float(metrics.macro_roc_auc(probs, labels)),
    }


def segmentation_scores(preds: np.ndarray, masks: np.ndarray, num_classes: int) -> dict[str, float]:
    """preds (N, H, W) in 0..K-1; masks (N, H, W) in 0..K-1 or 255; K includes background.

    ``miou`` averages all K classes (VOC convention); ``dice`` averages the foreground classes'
    Dice from the confusion matrix; ``kaggle`` is the competition's mean per-image Dice.
    """
    cm = metrics.confusion_matrix(preds, masks, num_classes)
    per_image = [metrics.kaggle_segmentation_dice(p, t, num_classes - 1)
                 for p, t in zip(preds, masks, strict=True)]
    return {
        "miou": float(metrics.mean_iou(cm)),
        "dice": float(np.nanmean(metrics.dice_from_confusion(cm)[1:])),
        "kaggle": float(np.mean(per_image)),
    }


def split_scores(task: str, cache: Cache, idx: np.ndarray, probs: np.ndarray,
                 preds: np.ndarray) -> dict[str, float]:
    """The task's scores of predictions for the cache rows ``idx`` (at the cache size)."""
    if task == "classification":
        return classification_scores(probs, cache.labels[idx], preds)
    return segmentation_scores(preds, np.asarray(cache.masks[idx]), len(cache.class_names) + 1)
