"""The task's scores over one epoch's training batches, tallied on the model's device."""

from __future__ import annotations

import numpy as np
import torch

from vocflow import metrics
from vocflow.artifacts import VOID
from vocflow.evaluation import classification_scores


class TrainingScores:
    """The task's scores on the training batches of one epoch, from the outputs the training
    step computed anyway (augmented images, weights changing within the epoch — as Keras reports
    its training metrics): no second pass over the training set.

    Accumulated on the model's device without a synchronisation per batch: segmentation keeps a
    (K, K) confusion matrix and per-image Kaggle Dice terms, classification the (n, C)
    probabilities and labels of the epoch.
    """

    def __init__(self, task: str, num_outputs: int) -> None:
        self.task, self.k = task, num_outputs
        self.cm: torch.Tensor | None = None
        self.dice: list[torch.Tensor] = []
        self.probs: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []

    @torch.no_grad()
    def add(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """logits (B, C) or (B, K, H, W) at the target's size; target (B, C) 0/1 or (B, H, W)."""
        if self.task == "classification":
            self.probs.append(logits.detach().float().sigmoid())
            self.labels.append(target.detach())
            return
        pred, truth = logits.detach().argmax(dim=1), target.detach()
        valid = truth != VOID
        pairs = truth[valid].long() * self.k + pred[valid]
        cm = torch.bincount(pairs, minlength=self.k * self.k).reshape(self.k, self.k)
        self.cm = cm if self.cm is None else self.cm + cm
        # Kaggle Dice per image over the (C, H, W) class stacks (vocflow.metrics): void truth is
        # "no class", background 0 has no plane.
        fg_pred = pred > 0
        fg_truth = valid & (truth > 0)
        both = (fg_truth & (pred == truth)).flatten(1).sum(1)
        total = fg_pred.flatten(1).sum(1) + fg_truth.flatten(1).sum(1)
        self.dice.append(torch.where(total > 0, 2 * both / total.clamp(min=1), 1.0))

    def state(self) -> dict[str, torch.Tensor]:
        """What has been added so far, as tensors (for a resume state)."""
        out = {}
        for name in ("dice", "probs", "labels"):
            parts = getattr(self, name)
            if parts:
                out[name] = torch.cat(parts)
        if self.cm is not None:
            out["cm"] = self.cm
        return out

    def restore(self, state: dict[str, torch.Tensor], device: torch.device) -> None:
        """Continue from ``state()`` of an interrupted epoch."""
        self.cm = state["cm"].to(device) if "cm" in state else None
        for name in ("dice", "probs", "labels"):
            setattr(self, name, [state[name].to(device)] if name in state else [])

    def scores(self) -> dict[str, float]:
        """The task's metrics (TASK_METRICS) over the batches added; {} before any batch."""
        if self.task == "classification":
            if not self.probs:
                return {}
            probs = torch.cat(self.probs).cpu().numpy()
            return classification_scores(probs, torch.cat(self.labels).cpu().numpy())
        if self.cm is None:
            return {}
        cm = self.cm.cpu().numpy()
        return {"miou": float(metrics.mean_iou(cm)),
                "dice": float(np.nanmean(metrics.dice_from_confusion(cm)[1:])),
                "kaggle": float(torch.cat(self.dice).float().mean().item())}
