"""Loss registries. Segmentation losses ignore void pixels (255) everywhere.

Shapes: classification logits (N, C) with 0/1 targets (N, C); segmentation logits (N, K, H, W)
with integer targets (N, H, W) in 0..K-1 or 255.

Segmentation losses built by ``build_loss`` also accept a model's train-mode output
``{"out": logits, "aux": logits}``: loss(out) + aux_weight · loss(aux).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vocflow.artifacts import VOID
from vocflow.errors import ConfigError, DataError
from vocflow.registry import Registry

CLASSIFICATION_LOSSES: Registry[nn.Module] = Registry("classification loss")
SEGMENTATION_LOSSES: Registry[nn.Module] = Registry("segmentation loss")
LossFn = Callable[..., torch.Tensor]  # (logits, target, *, params) -> scalar


def registry_for(task: str) -> Registry[nn.Module]:
    return CLASSIFICATION_LOSSES if task == "classification" else SEGMENTATION_LOSSES


def build_loss(task: str, name: str, class_counts: Sequence | np.ndarray | None = None,
               **params) -> nn.Module:
    """Loss ``name`` of ``task`` with ``params`` (from config ``loss_params``).

    ``class_counts``: pixel counts of classes 0..K-1 in the training fold's masks, per image
    (n, K) as ``pixel_counts`` returns them (or fold totals (K,)); handed to the losses that take
    them (``wce``) and ignored by the others. Segmentation: ``aux_weight`` (default 0.5,
    torchvision's reference recipe) weights the auxiliary head's loss.
    """
    registry = registry_for(task)
    builder = registry.get(name)
    aux_weight = float(params.pop("aux_weight", 0.5)) if task != "classification" else None
    if "class_counts" in inspect.signature(builder).parameters:
        params["class_counts"] = class_counts
    loss = registry.build(name, **params)
    return loss if aux_weight is None else WithAux(loss, aux_weight)


class WithAux(nn.Module):
    """``loss(out) + aux_weight · loss(aux)`` for dict outputs; plain ``loss`` for tensors."""

    def __init__(self, loss: nn.Module, aux_weight: float = 0.5) -> None:
        super().__init__()
        self.loss, self.aux_weight = loss, aux_weight

    def forward(self, output: torch.Tensor | dict[str, torch.Tensor],
                target: torch.Tensor) -> torch.Tensor:
        if not isinstance(output, dict):
            return self.loss(output, target)
        total = self.loss(output["out"], target)
        if "aux" in output and self.aux_weight:
            total = total + self.aux_weight * self.loss(output["aux"], target)
        return total


def pixel_counts(masks: np.ndarray, indices: np.ndarray | None, num_classes: int,
                 chunk: int = 256) -> np.ndarray:
    """(n, K) int64 per-image pixel counts of classes 0..K-1 in ``masks[indices]`` (masks
    (N, H, W) uint8, void 255 excluded), in ``indices`` order. Chunked: a memory-mapped cache
    is never read whole."""
    idx = np.arange(len(masks)) if indices is None else np.asarray(indices)
    out = np.zeros((len(idx), num_classes), np.int64)
    for lo in range(0, len(idx), chunk):
        block = np.asarray(masks[idx[lo : lo + chunk]]).reshape(-1, masks.shape[1] * masks.shape[2])
        # One bincount per chunk: image j's values are shifted into bins [256 j, 256 j + 255].
        shifted = block.astype(np.int64) + 256 * np.arange(len(block))[:, None]
        counts = np.bincount(shifted.ravel(), minlength=256 * len(block)).reshape(-1, 256)
        out[lo : lo + len(block)] = counts[:, :num_classes]
    return out


def class_weights(counts: Sequence | np.ndarray, method: str = "median",
                  c: float = 1.02) -> torch.Tensor:
    """(K,) float32 class weights from pixel counts: per image (n, K) or fold totals (K,).

    With f_k = n_k / Σ n the fold's class frequencies:

    - ``inverse``: 1 / f_k
    - ``median``: median frequency balancing (Eigen & Fergus, 2015): median(g) / g_k with
      g_k = n_k / (pixels of the images that contain k); from totals (K,) g = f, which makes it
      ``inverse`` up to a constant
    - ``enet``: 1 / ln(c + f_k) (Paszke et al., 2016; c = 1.02), bounded by 1 / ln c

    A class absent from the fold gets the largest weight of the present ones (inverse, median).
    Weights are scaled so that Σ f_k w_k = 1 (the mean weight of a training pixel is 1).
    """
    per_image = np.asarray(counts, dtype=np.float64)
    per_image = per_image[None] if per_image.ndim == 1 else per_image
    n = per_image.sum(axis=0)
    if per_image.ndim != 2 or (per_image < 0).any() or n.sum() <= 0:
        raise DataError(f"class pixel counts of shape {per_image.shape} have no labelled pixel; "
                        "check the training fold's masks (all void?)")
    f, present = n / n.sum(), n > 0
    if method == "enet":
        w = 1.0 / np.log(c + f)
    elif method in ("inverse", "median"):
        # Pixels of the images containing each class: (K,) = presence (n, K)ᵀ · image sizes (n,)
        g = f if method == "inverse" else n / ((per_image > 0).T @ per_image.sum(axis=1) + 1e-12)
        w = np.zeros_like(f)
        w[present] = (np.median(g[present]) if method == "median" else 1.0) / g[present]
        w[~present] = w[present].max()
    else:
        raise ConfigError(f"unknown class weighting '{method}'; valid: enet, inverse, median")
    return torch.as_tensor(w / (f * w).sum(), dtype=torch.float32)


class Loss(nn.Module):
    """A loss function ``fn(logits, target, **params)`` with its config parameters bound."""

    def __init__(self, fn: Callable[..., torch.Tensor], **params: Any) -> None:
        super().__init__()
        self.fn, self.params = fn, params

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fn(logits, target, **self.params)

    def extra_repr(self) -> str:
        return f"{self.fn.__name__}, {self.params}"


def loss(registry: Registry[nn.Module], name: str) -> Callable[[LossFn], LossFn]:
    """Register ``fn(logits, target, *, param=default, ...)`` as loss ``name``: its builder
    takes exactly the keyword parameters, so a misspelled one is refused by name."""
    def add(fn: LossFn) -> LossFn:
        params = list(inspect.signature(fn).parameters.values())[2:]

        def build(**kwargs: Any) -> Loss:
            return Loss(fn, **inspect.signature(build).bind(**kwargs).arguments)

        build.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        registry.register(name)(build)
        return fn
    return add


@loss(CLASSIFICATION_LOSSES, "bce")
def bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits, averaged over images and classes."""
    return F.binary_cross_entropy_with_logits(logits, target.float())


@loss(SEGMENTATION_LOSSES, "ce")
def ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pixel cross-entropy averaged over non-void pixels."""
    return F.cross_entropy(logits, target, ignore_index=VOID)


@SEGMENTATION_LOSSES.register("wce")
class WeightedCELoss(nn.Module):
    """Class-weighted pixel cross-entropy: Σ w_y · CE / Σ w_y over non-void pixels.

    ``weighting``: inverse | median | enet (see ``class_weights``); ``class_counts`` come from
    the training fold (``build_loss(..., class_counts=...)``), never from validation data.
    """

    def __init__(self, class_counts: Sequence | np.ndarray | None = None,
                 weighting: str = "median", c: float = 1.02) -> None:
        super().__init__()
        if class_counts is None:
            raise ConfigError("loss 'wce' needs the training fold's class pixel counts: "
                              "build_loss(task, 'wce', class_counts=pixel_counts(...))")
        self.register_buffer("weight", class_weights(class_counts, weighting, c))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape[1] != len(self.weight):
            raise ConfigError(f"wce has {len(self.weight)} class weights but the model outputs "
                              f"{logits.shape[1]} classes")
        weight = self.weight.to(device=logits.device, dtype=logits.dtype)
        return F.cross_entropy(logits, target, weight=weight, ignore_index=VOID)


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


@loss(SEGMENTATION_LOSSES, "dice")
def dice(logits: torch.Tensor, target: torch.Tensor, *, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice (``soft_dice_loss``)."""
    return soft_dice_loss(logits, target, smooth)


@loss(SEGMENTATION_LOSSES, "ce_dice")
def ce_dice(logits: torch.Tensor, target: torch.Tensor, *, alpha: float = 0.5,
            smooth: float = 1.0) -> torch.Tensor:
    """alpha · CE + (1 - alpha) · soft Dice."""
    ce_term = F.cross_entropy(logits, target, ignore_index=VOID)
    return alpha * ce_term + (1 - alpha) * soft_dice_loss(logits, target, smooth)


@loss(CLASSIFICATION_LOSSES, "focal")
def sigmoid_focal(logits: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0,
                  alpha: float = 0.25) -> torch.Tensor:
    """Focal loss (Lin et al., 2017) per label: -α_t (1 - p_t)^γ log p_t, mean over labels;
    alpha < 0 turns the α weighting off."""
    target = target.float()
    bce_term = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = torch.exp(-bce_term)
    alpha_t = alpha * target + (1 - alpha) * (1 - target) if alpha >= 0 else 1
    return (alpha_t * (1 - p_t) ** gamma * bce_term).mean()


@loss(CLASSIFICATION_LOSSES, "asl")
def asymmetric(logits: torch.Tensor, target: torch.Tensor, *, gamma_pos: float = 0.0,
               gamma_neg: float = 4.0, clip: float = 0.05, eps: float = 1e-8) -> torch.Tensor:
    """Asymmetric loss (Ridnik et al., 2021) for multi-label data with many easy negatives.

    Positives: -(1 - p)^γ+ log p; negatives with shifted p_m = max(p - m, 0): -p_m^γ- log(1 - p_m).
    Summed over labels, averaged over images (the paper's reduction, divided by C here so its
    scale matches BCE's learning rates).
    """
    target = target.float()
    p = logits.sigmoid()
    p_neg = (p - clip).clamp(min=0) if clip > 0 else p
    pos = target * (1 - p) ** gamma_pos * torch.log(p.clamp(min=eps))
    neg = (1 - target) * p_neg**gamma_neg * torch.log((1 - p_neg).clamp(min=eps))
    return -(pos + neg).mean()


@loss(SEGMENTATION_LOSSES, "focal")
def softmax_focal(logits: torch.Tensor, target: torch.Tensor, *,
                  gamma: float = 2.0) -> torch.Tensor:
    """Multi-class focal loss over non-void pixels: -(1 - p_t)^γ log p_t."""
    valid = target != VOID
    ce_term = F.cross_entropy(logits, target, ignore_index=VOID, reduction="none")  # (N, H, W)
    focal = (1 - torch.exp(-ce_term)) ** gamma * ce_term
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


@loss(SEGMENTATION_LOSSES, "lovasz")
def lovasz_softmax(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lovász-softmax (Berman et al., 2018) over the batch's non-void pixels, averaged over the
    classes present in the batch's truth."""
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
