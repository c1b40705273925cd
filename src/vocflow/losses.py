"""Loss registries. Segmentation losses ignore void pixels (255) everywhere.

Shapes: classification logits (N, C) with 0/1 targets (N, C); segmentation logits (N, K, H, W)
with integer targets (N, H, W) in 0..K-1 or 255.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vocflow.registry import Registry

VOID = 255
CLASSIFICATION_LOSSES: Registry[nn.Module] = Registry("classification loss")
SEGMENTATION_LOSSES: Registry[nn.Module] = Registry("segmentation loss")


def build_loss(task: str, name: str, **params) -> nn.Module:
    registry = CLASSIFICATION_LOSSES if task == "classification" else SEGMENTATION_LOSSES
    return registry.build(name, **params)


@CLASSIFICATION_LOSSES.register("bce")
class BCELoss(nn.Module):
    """Binary cross-entropy on logits, averaged over images and classes."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, target.float())


@SEGMENTATION_LOSSES.register("ce")
class CELoss(nn.Module):
    """Pixel cross-entropy averaged over non-void pixels."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, ignore_index=VOID)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - mean over classes of (2 Σ p·t + s) / (Σ p + Σ t + s), sums over non-void pixels.

    Batch-level sums (not per image) keep small classes from producing 0/0 noise.
    """
    num_classes = logits.shape[1]
    valid = (target != VOID).unsqueeze(1)  # (N, 1, H, W)
    probs = logits.softmax(dim=1) * valid
    onehot = F.one_hot(target.clamp(max=num_classes - 1) * valid.squeeze(1), num_classes)
    onehot = onehot.permute(0, 3, 1, 2).to(probs.dtype) * valid
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    return 1.0 - ((2.0 * inter + smooth) / (denom + smooth)).mean()


@SEGMENTATION_LOSSES.register("dice")
class DiceLoss(nn.Module):
    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return soft_dice_loss(logits, target, self.smooth)


@SEGMENTATION_LOSSES.register("ce_dice")
class CEDiceLoss(nn.Module):
    """alpha · CE + (1 - alpha) · soft Dice."""

    def __init__(self, alpha: float = 0.5, smooth: float = 1.0) -> None:
        super().__init__()
        self.alpha, self.smooth = alpha, smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, target, ignore_index=VOID)
        return self.alpha * ce + (1 - self.alpha) * soft_dice_loss(logits, target, self.smooth)


@CLASSIFICATION_LOSSES.register("focal")
class SigmoidFocalLoss(nn.Module):
    """Focal loss (Lin et al., 2017) per label: -α_t (1 - p_t)^γ log p_t, mean over labels."""

    def __init__(self, gamma: float = 2.0, alpha: float = 0.25) -> None:
        super().__init__()
        self.gamma, self.alpha = gamma, alpha

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float()
        ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        p_t = torch.exp(-ce)
        alpha_t = self.alpha * target + (1 - self.alpha) * (1 - target) if self.alpha >= 0 else 1
        return (alpha_t * (1 - p_t) ** self.gamma * ce).mean()


@CLASSIFICATION_LOSSES.register("asl")
class AsymmetricLoss(nn.Module):
    """Asymmetric loss (Ridnik et al., 2021) for multi-label data with many easy negatives.

    Positives: -(1 - p)^γ+ log p; negatives with shifted p_m = max(p - m, 0): -p_m^γ- log(1 - p_m).
    Summed over labels, averaged over images (the paper's reduction, divided by C here so its
    scale matches BCE's learning rates).
    """

    def __init__(self, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05,
                 eps: float = 1e-8) -> None:
        super().__init__()
        self.gamma_pos, self.gamma_neg, self.clip, self.eps = gamma_pos, gamma_neg, clip, eps

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float()
        p = logits.sigmoid()
        p_neg = (p - self.clip).clamp(min=0) if self.clip > 0 else p
        pos = target * (1 - p) ** self.gamma_pos * torch.log(p.clamp(min=self.eps))
        neg = (1 - target) * p_neg**self.gamma_neg * torch.log((1 - p_neg).clamp(min=self.eps))
        return -(pos + neg).mean()


@SEGMENTATION_LOSSES.register("focal")
class SoftmaxFocalLoss(nn.Module):
    """Multi-class focal loss over non-void pixels: -(1 - p_t)^γ log p_t."""

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = target != VOID
        ce = F.cross_entropy(logits, target, ignore_index=VOID, reduction="none")  # (N, H, W)
        focal = (1 - torch.exp(-ce)) ** self.gamma * ce
        return focal[valid].sum() / valid.sum().clamp(min=1)


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss w.r.t. sorted errors (Berman 2018)."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if len(gt_sorted) > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


@SEGMENTATION_LOSSES.register("lovasz")
class LovaszSoftmaxLoss(nn.Module):
    """Lovász-softmax (Berman et al., 2018) over the batch's non-void pixels, averaged over the
    classes present in the batch's truth."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        num_classes = logits.shape[1]
        probs = logits.softmax(dim=1).permute(0, 2, 3, 1).reshape(-1, num_classes)  # (P, K)
        labels = target.reshape(-1)
        valid = labels != VOID
        probs, labels = probs[valid], labels[valid]
        losses = []
        for c in range(num_classes):
            fg = (labels == c).to(probs.dtype)
            if fg.sum() == 0:
                continue
            errors = (fg - probs[:, c]).abs()
            errors_sorted, perm = torch.sort(errors, descending=True)
            losses.append(torch.dot(errors_sorted, lovasz_grad(fg[perm])))
        return torch.stack(losses).mean() if losses else logits.sum() * 0.0
