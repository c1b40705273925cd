"""One attack job (task × method over every mode and ε) and the summary over all jobs.

The attacked model is the selected cell's first fold model (``fold0``), white-box. Why one
model and not the fold ensemble: its held-out fold gives labelled images it never saw (also for
the Kaggle data, whose test labels are hidden), and one model keeps the attack budget small;
a transfer to the ensemble is left to a later experiment. Images are attacked at the side the
model works at: the cache's (``data.image_size``), or a variant's own ``image_size``, resized
from the original images as in training and prediction.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from vocflow.artifacts import Selection
from vocflow.atomic import write_csv
from vocflow.attack_config import AttackSettings
from vocflow.attacks.evaluate import (
    crf_predictions,
    imperceptibility,
    scaled_crf_params,
    score_rows,
)
from vocflow.attacks.gradient import radius
from vocflow.attacks.objectives import Goal, PixelModel, predict, probabilities, to_pixels
from vocflow.attacks.plots import attack_panel, save_figure, success_plot
from vocflow.attacks.registry import Attack, build_attack, make_goal
from vocflow.checkpoints import load_checkpoint
from vocflow.crf import CrfParams, read_crf
from vocflow.data.cache import Cache, load_cache
from vocflow.data.folds import read_folds
from vocflow.errors import DataError
from vocflow.runtime import pick_device, set_threads

log = logging.getLogger(__name__)


@dataclass
class AttackData:
    """The images one job attacks and the training images its generators learn from."""

    x: torch.Tensor  # (N, 3, S, S) float pixels in [0, 255]
    truth: np.ndarray | None  # (N, C) labels or (N, S, S) masks; None when unlabelled
    train_x: torch.Tensor  # (M, 3, S, S), M = attacks.generator.train_images (0 if unused)
    ids: list[str]
    class_names: list[str]
    sizes: np.ndarray  # (N, 2) original (height, width) of each attacked image


def attacked_model(selection_yaml: str | Path, task: str,
                   device: torch.device) -> tuple[PixelModel, dict[str, Any], int]:
    """(pixel-space model, checkpoint meta, fold) of the selected cell's first fold."""
    selected = Selection.read(selection_yaml)
    if selected.task != task:
        raise DataError(f"{selection_yaml} selects a {selected.task} cell, not {task}; "
                        "re-run the select rule")
    path = selected.require_checkpoints()[0]
    found = re.search(r"fold(\d+)", str(Path(path).parent.name))
    net, meta = load_checkpoint(path, device)
    log.info("attacking %s (%s, epoch %s)", path, selected.cell, meta.get("epoch"))
    return PixelModel(net).to(device), meta, int(found.group(1)) if found else 0


def _truth(cache: Cache, idx: np.ndarray, task: str, side: int) -> np.ndarray | None:
    if not cache.labelled:
        return None
    return cache.labels[idx] if task == "classification" else cache.resampled(side, idx)[1]


def attack_data(s: AttackSettings, train_dir: str | Path, test_dir: str | Path,
                folds_csv: str | Path, fold: int, train_images: int,
                meta: dict[str, Any]) -> AttackData:
    """The first ``n_images`` of the split and the first ``train_images`` of fold's training part,
    at the attacked model's input side (``meta``: its checkpoint's).

    validation: the attacked model's held-out fold; test: the test split. Generators always
    learn from the training part of ``fold``, so they never see an evaluated image.
    """
    train = load_cache(train_dir)
    if train.image_size != meta["image_size"]:
        raise DataError(f"the attacked model was trained on a {meta['image_size']} px cache but "
                        f"{train_dir} is {train.image_size} px; re-run the workflow")
    side = int(meta.get("input_size", meta["image_size"]))
    folds = read_folds(folds_csv, train.ids)
    fit_idx = np.flatnonzero(folds != fold)[:train_images]
    if s.split == "validation":
        cache, idx = train, np.flatnonzero(folds == fold)[: s.n_images]
    else:
        cache = load_cache(test_dir)
        idx = np.arange(min(s.n_images, len(cache)))
    if not len(idx):
        source = train_dir if s.split == "validation" else test_dir
        raise DataError(f"no {s.split} images to attack in {source}; check attacks.n_images "
                        "and the folds")
    return AttackData(x=to_pixels(cache.resampled(side, idx, masks=False)[0]),
                      truth=_truth(cache, idx, s.task, side),
                      train_x=to_pixels(train.resampled(side, fit_idx, masks=False)[0]),
                      ids=[cache.ids[i] for i in idx], class_names=list(train.class_names),
                      sizes=np.stack([cache.heights[idx], cache.widths[idx]], axis=1))


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor, batch_size: int,
              device: torch.device) -> torch.Tensor:
    return torch.cat([model(x[i:i + batch_size].to(device)).cpu()
                      for i in range(0, len(x), batch_size)])


def outputs(task: str, logits: torch.Tensor) -> dict[str, np.ndarray]:
    return {"probs": probabilities(task, logits).numpy(), "preds": predict(task, logits).numpy()}


def run_batches(attack: Attack, model: nn.Module, goal: Goal, x: torch.Tensor,
                reference: torch.Tensor, eps: float, batch_size: int,
                device: torch.device) -> tuple[torch.Tensor, float]:
    """Adversarial images (N, 3, S, S) and the attack's wall time in seconds."""
    parts, start = [], time.perf_counter()
    for i in range(0, len(x), batch_size):
        ref = reference[i:i + batch_size].to(device)
        parts.append(attack(model, x[i:i + batch_size].to(device),
                            lambda logits, ref=ref: goal.loss(logits, ref), eps).cpu())
    return torch.cat(parts), time.perf_counter() - start


def _perturbation_stats(x: torch.Tensor, x_adv: torch.Tensor) -> dict[str, float]:
    """Summary-row imperceptibility: the worst L∞ (a bound check), mean L2 / PSNR / SSIM."""
    stats = imperceptibility(x, x_adv)
    return {"linf": float(stats["linf"].max()), "l2": float(stats["l2"].mean()),
            "psnr": float(np.mean(stats["psnr"])), "ssim": float(stats["ssim"].mean())}


@dataclass
class ModeResult:
    rows: list[dict[str, Any]]
    example: dict[str, Any]  # images and predictions at the largest ε, for the panel


def _base_row(s: AttackSettings, attack: Attack, targeted: bool, eps: float, x: torch.Tensor,
              x_adv: torch.Tensor, seconds: float, fit_seconds: float) -> dict[str, Any]:
    """The columns of a summary row that do not depend on CRF: setting and imperceptibility."""
    return {"task": s.task, "attack": s.method, "norm": attack.norm, "targeted": targeted,
            "target": s.target if targeted else "", "epsilon": eps,
            "bound": radius(attack.norm, eps, x), "split": s.split, "n_images": len(x),
            **_perturbation_stats(x, x_adv), "seconds_per_image": seconds / len(x),
            "train_seconds": fit_seconds}


def _fit(attack: Attack, model: nn.Module, data: AttackData, goal: Goal, s: AttackSettings,
         device: torch.device) -> float:
    """Train a generator attack (no-op for gradient attacks); returns its training seconds."""
    if not attack.trains:
        return 0.0
    start = time.perf_counter()
    attack.fit(model, data.train_x.to(device), goal, s.epsilons)  # type: ignore[attr-defined]
    return time.perf_counter() - start


def attack_mode(model: nn.Module, attack: Attack, goal: Goal, data: AttackData,
                s: AttackSettings, device: torch.device,
                crf: list[CrfParams] | None = None) -> ModeResult:
    """Every ε of one mode (untargeted or targeted): summary rows and a panel example.

    ``crf``: one DenseCRF setting per attacked image; segmentation rows are then scored a
    second time after the CRF (``crf`` column True).
    """
    fit_seconds = _fit(attack, model, data, goal, s, device)
    clean_logits = logits_of(model, data.x, s.batch_size, device)
    clean, reference = outputs(s.task, clean_logits), goal.reference(clean_logits)
    target = reference.numpy() if goal.targeted else None
    clean_crf, k = _crf_view(data.x, clean, crf), len(data.class_names)
    rows, example = [], {}
    for eps in s.epsilons:
        x_adv, seconds = run_batches(attack, model, goal, data.x, reference, eps, s.batch_size,
                                     device)
        adv = outputs(s.task, logits_of(model, x_adv, s.batch_size, device))
        base = _base_row(s, attack, goal.targeted, eps, data.x, x_adv, seconds, fit_seconds)
        rows.append({**base, "crf": False, **score_rows(s.task, goal.targeted, clean, adv,
                                                        target, data.truth, k)})
        adv_crf = _crf_view(x_adv, adv, crf)
        if clean_crf is not None and adv_crf is not None:
            rows.append({**base, "crf": True, **score_rows(s.task, goal.targeted, clean_crf,
                                                           adv_crf, target, data.truth, k)})
        example = {"eps": eps, "targeted": goal.targeted, "x": data.x, "x_adv": x_adv,
                   "clean": clean["preds"], "adv": adv["preds"], "target": target,
                   "adv_crf": None if adv_crf is None else adv_crf["preds"], "truth": data.truth}
    return ModeResult(rows, example)


def _crf_view(x: torch.Tensor, out: dict[str, np.ndarray],
              crf: list[CrfParams] | None) -> dict[str, np.ndarray] | None:
    """The same predictions after DenseCRF, or None without CRF settings."""
    if crf is None:
        return None
    return {"probs": out["probs"], "preds": crf_predictions(x, out["probs"], crf)}


def crf_settings(s: AttackSettings, data: AttackData,
                 crf_yaml: str | Path | None) -> list[CrfParams] | None:
    """Per-image DenseCRF settings at cache size: the post-processing's tuned setting
    (results/segmentation/crf.yaml, used even where it was not kept, so a defence that only
    masks gradients shows) or vocflow.crf's defaults; None when CRF scoring is off."""
    if not (s.crf and s.task == "segmentation"):
        return None
    tuned = read_crf(crf_yaml)[1] if crf_yaml else None
    params = tuned or CrfParams()
    size = int(data.x.shape[-1])
    return [scaled_crf_params(params, size, int(h), int(w)) for h, w in data.sizes]


def run_attack(train_dir: str | Path, test_dir: str | Path, folds_csv: str | Path,
               selection_yaml: str | Path, settings: dict[str, Any], out_csv: str | Path,
               panel_png: str | Path, threads: int = 1,
               crf_yaml: str | Path | None = None) -> None:
    """Attack the selected model of ``settings['task']`` with one method; write rows + panel.

    ``crf_yaml``: the tuned DenseCRF setting of the post-processing (segmentation only).
    """
    s = AttackSettings.from_dict(settings)
    set_threads(threads)
    torch.manual_seed(s.seed)
    device = pick_device()
    model, meta, fold = attacked_model(selection_yaml, s.task, device)
    attack = build_attack(s)
    train_images = int(getattr(attack, "train_images", 0)) if attack.trains else 0
    data = attack_data(s, train_dir, test_dir, folds_csv, fold, train_images, meta)
    crf = crf_settings(s, data, crf_yaml)
    results = [attack_mode(model, attack, make_goal(s, targeted, data.class_names), data, s,
                           device, crf) for targeted in s.targeted]
    frame = pd.DataFrame([{**row, "fold": fold} for r in results for row in r.rows])
    write_csv(out_csv, frame)
    save_figure(attack_panel([r.example for r in results], s, data.class_names), panel_png)
    log.info("%s on %s: %d rows; success %s", s.method, s.task, len(frame),
             ", ".join(f"{v:.2f}" for v in frame["success_rate"] if not math.isnan(v)))


def summarize(csv_paths: Iterable[str | Path], out_csv: str | Path,
              plot_png: str | Path) -> None:
    """Concatenate the per-job tables into ``out_csv`` and plot success against ε."""
    frames = [pd.read_csv(p) for p in csv_paths]
    frames = [f for f in frames if len(f)]
    if not frames:
        raise DataError("no attack results to summarise; check attacks.methods in the config")
    table = pd.concat(frames, ignore_index=True).sort_values(
        ["task", "attack", "targeted", "crf", "epsilon"], kind="stable")
    write_csv(out_csv, table)
    save_figure(success_plot(table), plot_png)
    log.info("attack summary: %d rows from %d jobs", len(table), len(frames))
