"""Scores of an attack: success, task-metric drop, imperceptibility, and a CRF-aware view.

Shapes: images (B, 3, H, W) float in [0, 255]; classification predictions (B, C) 0/1, targets
alike; segmentation predictions and targets (B, H, W) labels 0..K-1 (0 = background).

Success rates:

* untargeted classification: share of images whose predicted label set changed;
* targeted classification: share of images whose predicted label set equals the target exactly;
* untargeted segmentation: share of pixels whose predicted label changed (mean over images);
* targeted segmentation: accuracy on the pixels the target changes (pooled over images), so
  pixels the target leaves as predicted cannot inflate it; ``target_accuracy`` gives the plain
  target-mask pixel accuracy (and, for classification, the per-label agreement with the target).
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vocflow.attacks.objectives import MAX_PIXEL
from vocflow.crf import CrfParams, dense_crf
from vocflow.evaluation import classification_scores, segmentation_scores

log = logging.getLogger(__name__)

# The metric whose drop the summary reports first, per task (vocflow.evaluation names).
PRIMARY_METRIC = {"classification": "map", "segmentation": "miou"}


# ----------------------------------------------------------------------------- imperceptibility


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).float()  # (size, size)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = MAX_PIXEL) -> torch.Tensor:
    """Mean SSIM per image (B,) with the 11 × 11, σ = 1.5 Gaussian window of Wang et al. (2004),
    per channel, over the window positions fully inside the image (H, W must be >= 11)."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    channels = x.shape[1]
    window = _gaussian_window().to(x).expand(channels, 1, -1, -1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (num / den).flatten(1).mean(dim=1)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = MAX_PIXEL) -> torch.Tensor:
    """Per-image PSNR in dB (B,); +inf for an unchanged image."""
    mse = ((x - y) ** 2).flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range**2 / mse)


def imperceptibility(x: torch.Tensor, x_adv: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-image L∞ and L2 norms of the perturbation (pixel units), PSNR and SSIM, each (B,)."""
    delta = (x_adv - x).double().flatten(1)
    with torch.no_grad():
        return {"linf": delta.abs().amax(dim=1).numpy(), "l2": delta.norm(dim=1).numpy(),
                "psnr": psnr(x.double(), x_adv.double()).numpy(),
                "ssim": ssim(x.double(), x_adv.double()).numpy()}


# ----------------------------------------------------------------------------- success


def success_rate(task: str, targeted: bool, clean: np.ndarray, adv: np.ndarray,
                 target: np.ndarray | None = None) -> float:
    """The success rate defined in the module docstring; NaN when a target changes nothing."""
    if task == "classification":
        if targeted:
            return float((adv == target).all(axis=1).mean())
        return float((adv != clean).any(axis=1).mean())
    if not targeted:
        return float((adv != clean).reshape(len(adv), -1).mean(axis=1).mean())
    changed = target != clean
    hits = int(((adv == target) & changed).sum())
    return hits / int(changed.sum()) if changed.any() else math.nan


def target_accuracy(adv: np.ndarray, target: np.ndarray) -> float:
    """Share of labels (classification) or pixels (segmentation) equal to the target."""
    return float((adv == target).mean())


def task_metrics(task: str, probs: np.ndarray, preds: np.ndarray, truth: np.ndarray | None,
                 num_classes: int) -> dict[str, float]:
    """vocflow.evaluation scores of one set of predictions; NaN without ground truth.

    probs: (B, C) classification probabilities (segmentation: unused); preds: hard predictions;
    truth: (B, C) labels or (B, H, W) masks; num_classes: C object classes.
    """
    names = ("map", "f1", "kaggle") if task == "classification" else ("miou", "dice", "kaggle")
    if truth is None:
        return dict.fromkeys(names, math.nan)
    if task == "classification":
        return classification_scores(probs, truth, preds)
    return segmentation_scores(preds.astype(np.int64), truth, num_classes + 1)


def score_rows(task: str, targeted: bool, clean: dict[str, np.ndarray],
               adv: dict[str, np.ndarray], target: np.ndarray | None,
               truth: np.ndarray | None, num_classes: int) -> dict[str, Any]:
    """Success and metric columns of one summary row from clean / adversarial predictions.

    clean, adv: {"probs": ..., "preds": ...} as numpy arrays.
    """
    metric = PRIMARY_METRIC[task]
    before = task_metrics(task, clean["probs"], clean["preds"], truth, num_classes)
    after = task_metrics(task, adv["probs"], adv["preds"], truth, num_classes)
    return {
        "success_rate": success_rate(task, targeted, clean["preds"], adv["preds"], target),
        # The same measure without attack: images already at a classification target.
        "success_clean": success_rate(task, targeted, clean["preds"], clean["preds"], target),
        "target_accuracy": target_accuracy(adv["preds"], target) if targeted else math.nan,
        "metric": metric, "metric_clean": before[metric], "metric_adv": after[metric],
        "metric_drop": before[metric] - after[metric],
        "kaggle_clean": before["kaggle"], "kaggle_adv": after["kaggle"],
    }


# ----------------------------------------------------------------------------- CRF


def scaled_crf_params(params: CrfParams, size: int, height: int, width: int) -> CrfParams:
    """``params`` (spatial stds in px of the original H × W image) for the S × S cache image.

    The cache resizes without keeping the aspect ratio, so one std is scaled by the geometric
    mean of the two factors, S / √(H·W).
    """
    factor = size / float(np.sqrt(height * width))
    return replace(params, sxy=params.sxy * factor, gaussian_sxy=params.gaussian_sxy * factor)


def crf_predictions(images: torch.Tensor, probs: np.ndarray,
                    params: list[CrfParams]) -> np.ndarray:
    """(B, H, W) arg-max of the DenseCRF marginals (vocflow.crf.dense_crf), one setting per image.

    images (B, 3, H, W) in [0, 255]; probs (B, K, H, W). The CRF sees the image it is given,
    i.e. the adversarial image for attacked predictions, as a deployed pipeline would; pixels
    are rounded to uint8 as a saved image would be.
    """
    pixels = images.detach().round().clamp(0, MAX_PIXEL).to(torch.uint8)
    pixels = pixels.permute(0, 2, 3, 1).cpu().numpy()
    return np.stack([dense_crf(img, p, c).argmax(axis=0)
                     for img, p, c in zip(pixels, probs, params, strict=True)])
