"""The post-processing pipeline of one image, the scores it accumulates, and the shard helpers.

One image's final prediction, on the test split (vocflow.predict) and on out-of-fold images (the
ablation's final step, vocflow.ablation) alike:

    ensemble (+ flip TTA) probabilities -> per-class thresholds -> [DenseCRF] -> reconcile

Segmentation probabilities are upsampled bilinearly to the image's original size first, then
refined by the CRF (when kept), then decoded with the per-class threshold rule
(vocflow.thresholds.apply_segmentation): thresholds are the decision, the CRF only refines the
soft evidence. ``reconcile`` (``post.reconcile``) lets the classification labels follow the
classes present in the mask.

Images are dealt to shards round-robin (``i % N``), one job per shard, so a shard's result never
depends on how many shards there are; ``Tally`` holds summable scores, so shards' scores add up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from vocflow import metrics
from vocflow.artifacts import class_names_for
from vocflow.crf import CrfParams, dense_crf, read_crf
from vocflow.errors import ConfigError
from vocflow.registry import Registry
from vocflow.thresholds import apply_classification, apply_segmentation, read_thresholds

# How the final classification labels use the segmentation mask (post.reconcile).
Combine = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (labels, present) -> labels
RECONCILE: Registry[Combine] = Registry("reconcile mode (post.reconcile)")
for _name, _combine in {"none": lambda labels, present: labels, "union": np.bitwise_or,
                        "intersection": np.bitwise_and,
                        "mask": lambda labels, present: present}.items():
    RECONCILE.register(_name)(lambda combine=_combine: combine)


def reconcile(mode: str, labels: np.ndarray, mask: np.ndarray, num_classes: int) -> np.ndarray:
    """(C,) 0/1 labels combined with the classes present in ``mask`` (labels 1..C)."""
    present = np.zeros(num_classes, np.uint8)
    found = np.unique(mask)
    found = found[(found >= 1) & (found <= num_classes)].astype(np.int64)
    present[found - 1] = 1
    return RECONCILE.build(mode)(np.asarray(labels, np.uint8), present).astype(np.uint8)


# --------------------------------------------------------------------------- one image


def upsample(probs: np.ndarray, scale: float, height: int, width: int) -> np.ndarray:
    """(K, S, S) stored probabilities (p = q / scale) -> (K, H, W) float32, bilinear."""
    p = torch.from_numpy(np.asarray(probs, np.float32) / np.float32(scale))
    return F.interpolate(p[None], size=(int(height), int(width)), mode="bilinear",
                         align_corners=False)[0].numpy()


def segment(image: np.ndarray, probs: np.ndarray, scale: float, thresholds: np.ndarray | None,
            params: CrfParams | None) -> np.ndarray:
    """The segmentation step for one image: upsample -> [CRF] -> thresholds (or arg-max).

    image (H, W, 3) uint8; probs (K, S, S) stored probabilities; returns (H, W) uint8 labels.
    """
    p = upsample(probs, scale, image.shape[0], image.shape[1])
    if params is not None:
        p = dense_crf(image, p, params)
    if thresholds is None:
        return p.argmax(axis=0).astype(np.uint8)
    return apply_segmentation(p, thresholds)


@dataclass(frozen=True)
class Pipeline:
    """The tuned post-processing: thresholds of both tasks, the CRF decision, reconciliation."""

    cls_thresholds: np.ndarray  # (C,)
    seg_thresholds: np.ndarray  # (C + 1,) background first
    crf_keep: bool
    crf_params: CrfParams | None  # the best searched setting, also when not kept
    reconcile: str
    num_classes: int

    @classmethod
    def read(cls, class_names: Sequence[str], thresholds: Mapping[str, str | Path],
             crf_yaml: str | Path, reconcile_mode: str) -> Pipeline:
        """From the thresholds.yaml of each task and crf.yaml; an unknown reconcile mode fails
        here, before any image is processed."""
        RECONCILE.get(reconcile_mode)
        keep, params = read_crf(crf_yaml)
        return cls(read_thresholds(thresholds["classification"], class_names),
                   read_thresholds(thresholds["segmentation"],
                                   class_names_for("segmentation", class_names)),
                   keep, params, reconcile_mode, len(class_names))

    @property
    def kept_crf(self) -> CrfParams | None:
        return self.crf_params if self.crf_keep else None


class Post(NamedTuple):
    """One image through the pipeline: thresholded labels (C,), the mask (H, W), and the final
    labels after reconciliation with the mask (C,)."""

    labels: np.ndarray
    mask: np.ndarray
    final: np.ndarray


def post_image(pipe: Pipeline, cls_probs: np.ndarray, seg_probs: np.ndarray, seg_scale: float,
               image: np.ndarray) -> Post:
    """The pipeline for one image: cls_probs (C,) float; seg_probs (K, S, S) stored with
    ``seg_scale``; image (H, W, 3) uint8 at original size."""
    mask = segment(image, seg_probs, seg_scale, pipe.seg_thresholds, pipe.kept_crf)
    labels = apply_classification(cls_probs, pipe.cls_thresholds)
    return Post(labels, mask, reconcile(pipe.reconcile, labels, mask, pipe.num_classes))


# --------------------------------------------------------------------------- scores


@dataclass
class Tally:
    """Scores accumulated image by image; shards' tallies add up (``merge``).

    cls_dice / seg_dice: Kaggle Dice of each classification / segmentation row; cm (C+1, C+1)
    pixel confusion with void ignored; tp/fp/fn (C,) multilabel counts.
    """

    num_classes: int
    cls_dice: list[float] = field(default_factory=list)
    seg_dice: list[float] = field(default_factory=list)
    cm: np.ndarray | None = None
    tp: np.ndarray | None = None
    fp: np.ndarray | None = None
    fn: np.ndarray | None = None

    def __post_init__(self) -> None:
        c = self.num_classes
        self.cm = np.zeros((c + 1, c + 1), np.int64) if self.cm is None else self.cm
        for name in ("tp", "fp", "fn"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(c, np.int64))

    def add_labels(self, pred: np.ndarray, truth: np.ndarray) -> None:
        self.cls_dice.append(metrics.kaggle_classification_dice(pred, truth))
        counts = metrics.multilabel_counts(np.asarray(pred)[None], np.asarray(truth)[None])
        self.tp, self.fp, self.fn = self.tp + counts.tp, self.fp + counts.fp, self.fn + counts.fn

    def add_mask(self, pred: np.ndarray, truth: np.ndarray) -> None:
        self.seg_dice.append(metrics.kaggle_segmentation_dice(pred, truth, self.num_classes))
        self.cm += metrics.confusion_matrix(pred, truth, self.num_classes + 1)

    def add(self, labels: np.ndarray, mask: np.ndarray, true_labels: np.ndarray,
            true_mask: np.ndarray) -> None:
        self.add_labels(labels, true_labels)
        self.add_mask(mask, true_mask)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}{k}": np.asarray(getattr(self, k)) for k in
                ("cls_dice", "seg_dice", "cm", "tp", "fp", "fn")}

    @classmethod
    def merge(cls, parts: Sequence[Mapping[str, np.ndarray]], prefix: str,
              num_classes: int) -> Tally:
        total = cls(num_classes)
        for part in parts:
            total.cls_dice += part[f"{prefix}cls_dice"].tolist()
            total.seg_dice += part[f"{prefix}seg_dice"].tolist()
            for name in ("cm", "tp", "fp", "fn"):
                setattr(total, name, getattr(total, name) + part[f"{prefix}{name}"])
        return total

    def scores(self, task: str) -> dict[str, float]:
        """kaggle (the task's rows), miou/dice (segmentation), f1 (classification macro)."""
        nan = float("nan")
        if task == "classification":
            return {"kaggle": _mean(self.cls_dice), "miou": nan, "dice": nan,
                    "f1": float(metrics.macro_f1(self.tp, self.fp, self.fn))}
        return {"kaggle": _mean(self.seg_dice), "miou": float(metrics.mean_iou(self.cm)),
                "dice": float(np.nanmean(metrics.dice_from_confusion(self.cm)[1:])), "f1": nan}


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


# --------------------------------------------------------------------------- shards


def shard_positions(n: int, shards: int, shard: int) -> np.ndarray:
    """Positions 0..n-1 of shard ``shard`` of ``shards`` (round-robin: sizes differ by <= 1)."""
    if shards < 1 or not 0 <= shard < shards:
        raise ConfigError(f"shard {shard} of {shards}: need 0 <= shard < shards and shards >= 1; "
                          "fix post.shards in config/config.yaml")
    return np.arange(shard, n, shards)


def sample_positions(n: int, size: int | None, seed: int) -> np.ndarray:
    """A sorted seeded sample of ``size`` positions out of n (all when size is None or >= n)."""
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
