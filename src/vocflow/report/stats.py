"""Numbers behind the report: dataset statistics, out-of-fold (OOF) evaluation, run times.

OOF probabilities are what each fold model predicted for the images it never trained on, so
per-class scores and best/worst examples come from honest predictions without a test label.
Scores reuse ``vocflow.metrics`` (counts first, then scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vocflow import metrics
from vocflow.artifacts import read_oof
from vocflow.data.cache import Cache

# ----------------------------------------------------------------------------- data


def class_frequencies(cache: Cache) -> pd.DataFrame:
    """Per class: images containing it and its pixels in the resized masks (void excluded)."""
    pixels = cache.class_pixel_counts()
    return pd.DataFrame({"class": cache.class_names,
                         "images": cache.labels.sum(axis=0).astype(int),
                         "pixels": pixels[1:].astype(int)})


def fold_balance(cache: Cache, folds: np.ndarray) -> pd.DataFrame:
    """(folds × [images, *classes]) image counts: how evenly stratification spread each class."""
    rows = {}
    for k in sorted(np.unique(folds)):
        member = folds == k
        rows[f"fold{k}"] = [int(member.sum()), *cache.labels[member].sum(axis=0).astype(int)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=["images", *cache.class_names])


def example_per_class(cache: Cache) -> list[int | None]:
    """For each class 1..C the image whose resized mask it covers most (None: class absent)."""
    c = len(cache.class_names)
    best = np.full(c, -1.0)
    pick: list[int | None] = [None] * c
    for i in range(len(cache)):  # one mask at a time: the cache is memory-mapped
        counts = np.bincount(np.asarray(cache.masks[i]).ravel(), minlength=256)[1:c + 1]
        share = counts / counts.sum() if counts.sum() else counts.astype(float)
        for cls in np.flatnonzero(share > best):
            if counts[cls] > 0:
                best[cls], pick[cls] = share[cls], i
    return pick


# ----------------------------------------------------------------------------- OOF


@dataclass
class OofEval:
    """Scores of one cell's OOF predictions.

    index: (N,) cache rows; per_image: (N,) Kaggle Dice of each image's row; per_class: one row
    per class; confusion: (K, K) for segmentation; preds: (N, C) 0/1 labels or (N, S, S) masks.
    """

    task: str
    index: np.ndarray
    per_image: np.ndarray
    per_class: pd.DataFrame
    preds: np.ndarray
    probs: np.ndarray | None = None
    confusion: np.ndarray | None = None


def classification_oof(cache: Cache, paths: Sequence[str | Path],
                       thresholds: np.ndarray | None = None) -> OofEval:
    """AP and F1 per class over all folds; F1 at ``thresholds`` (C,), default 0.5."""
    parts = [read_oof(p) for p in paths]
    index = np.concatenate([p["index"] for p in parts]).astype(np.int64)
    probs = np.concatenate([p["probs"] for p in parts]).astype(np.float64)
    labels = cache.labels[index]
    cut = np.full(probs.shape[1], 0.5) if thresholds is None else np.asarray(thresholds)
    preds = (probs >= cut[None, :]).astype(np.uint8)
    counts = metrics.multilabel_counts(preds, labels)
    per_class = pd.DataFrame({"class": cache.class_names,
                              "ap": metrics.per_class_average_precision(probs, labels),
                              "f1": metrics.f1_from_counts(counts.tp, counts.fp, counts.fn)})
    per_image = np.array([metrics.kaggle_classification_dice(p, t)
                          for p, t in zip(preds, labels, strict=True)])
    return OofEval("classification", index, per_image, per_class, preds, probs=probs)


def segmentation_oof(cache: Cache, paths: Sequence[str | Path]) -> OofEval:
    """Dice and IoU per class (background included) and the (K, K) confusion over all folds."""
    k = len(cache.class_names) + 1
    cm = np.zeros((k, k), np.int64)
    index, preds, per_image = [], [], []
    for path in paths:  # fold by fold: (n, K, S, S) probabilities are the bulk of the memory
        part = read_oof(path)
        rows = part["index"].astype(np.int64)
        pred = part["probs"].argmax(axis=1).astype(np.uint8)  # uint8 scaled probs: same arg-max
        truth = np.asarray(cache.masks[rows])
        cm += metrics.confusion_matrix(pred, truth, k)
        per_image += [metrics.kaggle_segmentation_dice(p, t, k - 1)
                      for p, t in zip(pred, truth, strict=True)]
        index.append(rows)
        preds.append(pred)
    per_class = pd.DataFrame({"class": ["background", *cache.class_names],
                              "dice": metrics.dice_from_confusion(cm),
                              "iou": metrics.iou_from_confusion(cm)})
    return OofEval("segmentation", np.concatenate(index), np.asarray(per_image), per_class,
                   np.concatenate(preds), confusion=cm)


def best_and_worst(per_image: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the ``n`` highest and ``n`` lowest per-image scores (stable on ties)."""
    order = np.argsort(-per_image, kind="stable")
    n = min(n, len(order) // 2 if len(order) > 1 else len(order))
    return order[:n], order[::-1][:n]


# ----------------------------------------------------------------------------- runtime

BENCH_COLUMNS = ("s", "cpu_time", "max_rss")


def stage_of(relative: Path) -> str:
    """Group name of a benchmark file: ``train/segmentation/unet/ce/fold0.tsv`` ->
    ``train/segmentation``; ``predict_classification.tsv`` -> ``predict``."""
    parts = relative.with_suffix("").parts
    if len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0] if len(parts) == 2 else parts[0].split("_")[0]


def read_benchmarks(folder: str | Path) -> pd.DataFrame:
    """One row per benchmark file (repeats averaged): job, stage, s, cpu_time, max_rss (MB)."""
    root = Path(folder)
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        frame = pd.read_csv(path, sep="\t")
        values = {c: pd.to_numeric(frame[c], errors="coerce").mean() if c in frame else np.nan
                  for c in BENCH_COLUMNS}
        rel = path.relative_to(root)
        rows.append({"job": str(rel.with_suffix("")), "stage": stage_of(rel), **values})
    return pd.DataFrame(rows, columns=["job", "stage", *BENCH_COLUMNS])


def runtime_by_stage(bench: pd.DataFrame, gpu_stages: Sequence[str]) -> pd.DataFrame:
    """Per stage: jobs, total wall hours, mean and max wall seconds, CPU hours, peak RSS (MB),
    and whether it counts as a GPU stage (its first path part is in ``gpu_stages``)."""
    agg = bench.groupby("stage", sort=True).agg(
        jobs=("job", "count"), wall_h=("s", "sum"), mean_s=("s", "mean"), max_s=("s", "max"),
        cpu_h=("cpu_time", "sum"), peak_rss_mb=("max_rss", "max")).reset_index()
    agg["wall_h"] /= 3600.0
    agg["cpu_h"] /= 3600.0
    agg["gpu_stage"] = [s.split("/")[0] in set(gpu_stages) for s in agg["stage"]]
    return agg
