"""What an attack optimises: the model in pixel space, predictions, targets and the loss to ascend.

Attacks work on images ``x`` (B, 3, H, W) float in [0, 255] (the cache's uint8 pixels as floats),
so ε is in pixel levels; ``PixelModel`` applies the training normalisation inside the graph.

Every attack *ascends* ``Goal.loss``: untargeted, the task loss against the reference labels
(the clean prediction, so no ground truth is needed); targeted, minus the task loss against a
target built from the clean prediction by a target rule (``TARGETS``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vocflow.attack_config import parse_target
from vocflow.imagenet import MEAN, STD

MAX_PIXEL = 255.0


class PixelModel(nn.Module):
    """Wraps a trained model so it takes [0, 255] pixels: (B, 3, H, W) -> the model's logits."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.eval()
        for p in self.net.parameters():  # gradients flow to the input only
            p.requires_grad_(False)
        # Same statistics as vocflow.data.transforms.normalize, as (1, 3, 1, 1) buffers.
        self.register_buffer("mean", torch.as_tensor(MEAN).view(1, 3, 1, 1) * MAX_PIXEL)
        self.register_buffer("std", torch.as_tensor(STD).view(1, 3, 1, 1) * MAX_PIXEL)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def to_pixels(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 255]."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(images).transpose(0, 3, 1, 2))).float()


def predict(task: str, logits: torch.Tensor) -> torch.Tensor:
    """Hard predictions: classification (B, C) 0/1 float at p >= 0.5; segmentation (B, H, W)
    int64 arg-max."""
    if task == "classification":
        return (logits >= 0).float()  # sigmoid(z) >= 0.5  <=>  z >= 0
    return logits.argmax(dim=1)


def probabilities(task: str, logits: torch.Tensor) -> torch.Tensor:
    return logits.sigmoid() if task == "classification" else logits.softmax(dim=1)


def task_loss(task: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-image loss (B,): mean BCE over the C classes, or mean pixel CE over H × W."""
    if task == "classification":
        return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(dim=1)
    return F.cross_entropy(logits, labels, reduction="none").flatten(1).mean(dim=1)


# ----------------------------------------------------------------------------- targets

# A target rule maps clean predictions (B, C) or (B, H, W) to target labels of the same shape.
TargetRule = Callable[[torch.Tensor], torch.Tensor]


def _only(class_index: int) -> TargetRule:
    def rule(pred: torch.Tensor) -> torch.Tensor:
        target = torch.zeros_like(pred)
        target[:, class_index] = 1.0
        return target
    return rule


def _add(class_index: int) -> TargetRule:
    def rule(pred: torch.Tensor) -> torch.Tensor:
        target = pred.clone()
        target[:, class_index] = 1.0
        return target
    return rule


def _largest_foreground(pred: torch.Tensor, num_labels: int) -> torch.Tensor:
    """(B,) the foreground label covering most pixels of each mask (B, H, W); 0 if none."""
    counts = F.one_hot(pred.flatten(1), num_labels).sum(dim=1)  # (B, K)
    counts[:, 0] = 0
    return torch.where(counts.amax(dim=1) > 0, counts.argmax(dim=1), 0)


def _relabel(source: int | None, dest: int, num_labels: int) -> TargetRule:
    """Pixels of ``source`` (None: each image's largest predicted object) become ``dest``."""
    def rule(pred: torch.Tensor) -> torch.Tensor:
        if source is None:
            src = _largest_foreground(pred, num_labels).view(-1, 1, 1)
            hit = (pred == src) & (src > 0)
        else:
            hit = pred == source
        return torch.where(hit, torch.full_like(pred, dest), pred)
    return rule


def build_target(task: str, spec: str, class_names: Sequence[str]) -> TargetRule:
    """The rule of a target spec of config ``attacks.targets`` (vocflow.attack_config's
    TARGET_FORMS; an invalid spec fails with the valid forms)."""
    target = parse_target(task, spec, class_names)
    if target.kind == "only":
        return _only(target.dest)
    if target.kind == "add":
        return _add(target.dest)
    if target.kind in ("none", "background"):
        return torch.zeros_like
    return _relabel(target.source, target.dest, len(class_names) + 1)


# ----------------------------------------------------------------------------- goal


@dataclass(frozen=True)
class Goal:
    """One attack goal: untargeted (move away from the clean prediction) or towards a target."""

    task: str
    targeted: bool
    target: TargetRule | None = None

    def reference(self, clean_logits: torch.Tensor) -> torch.Tensor:
        """Labels the loss is measured against: the target, or the clean prediction."""
        pred = predict(self.task, clean_logits.detach())
        if not self.targeted:
            return pred
        if self.target is None:
            raise ValueError("a targeted goal needs a target rule")
        return self.target(pred)

    def loss(self, logits: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """(B,) the quantity every attack ascends."""
        value = task_loss(self.task, logits, reference)
        return -value if self.targeted else value
