"""Training of one grid cell: fit on K-1 folds, validate on the held-out fold every epoch.

Writes the best checkpoint, the per-epoch metrics and the out-of-fold (OOF) probabilities of the
best epoch. Deterministic on CPU for a given seed and fold.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from vocflow.config import TrainSettings
from vocflow.data.cache import Cache, load_cache
from vocflow.data.dataset import CacheDataset
from vocflow.data.folds import read_folds
from vocflow.data.transforms import build_transform
from vocflow.errors import ConfigError, DataError
from vocflow.evaluation import TASK_METRICS, classification_scores, segmentation_scores
from vocflow.io import save_npz, torch_save, write_csv
from vocflow.losses import build_loss
from vocflow.models import build_model

log = logging.getLogger(__name__)
PROB_SCALE = 255  # segmentation OOF probabilities are stored as uint8: p ≈ q / 255


def seed_everything(seed: int, threads: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def pick_device() -> torch.device:
    # Jobs on nodes without a usable CUDA driver (or fake GPUs in tests) fall back to CPU.
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def num_outputs(task: str, num_classes: int) -> int:
    return num_classes if task == "classification" else num_classes + 1


def split_indices(folds: np.ndarray, fold: int, cache_dir: str | Path) -> tuple[np.ndarray, ...]:
    train_idx, val_idx = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
    if not len(val_idx) or not len(train_idx):
        raise DataError(f"fold {fold} of {cache_dir} has an empty train or validation part; "
                        "check 'folds' in config/config.yaml")
    return train_idx, val_idx


def make_loaders(cache: Cache, s: TrainSettings, train_idx: np.ndarray, val_idx: np.ndarray,
                 generator: torch.Generator, seed: int) -> tuple[DataLoader, DataLoader]:
    def dataset(idx: np.ndarray, transform: Any) -> CacheDataset:
        return CacheDataset(cache.images, cache.masks, cache.labels, idx, s.task, transform)

    train = DataLoader(dataset(train_idx, build_transform(s.augment, seed)),
                       batch_size=s.batch_size, shuffle=True, generator=generator)
    val = DataLoader(dataset(val_idx, None), batch_size=s.batch_size * 2, shuffle=False)
    return train, val


def train_one_epoch(model: nn.Module, loader: DataLoader, loss_fn: nn.Module,
                    optimizer: torch.optim.Optimizer, device: torch.device) -> float:
    model.train()
    total, count = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total, count = total + loss.item() * len(x), count + len(x)
    return total / max(count, 1)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, loss_fn: nn.Module,
             device: torch.device, task: str) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean loss, probabilities and hard predictions over ``loader``.

    classification: probs (N, C) float32, preds (N, C) bool at 0.5;
    segmentation: probs (N, K, S, S) uint8 (x / 255), preds (N, S, S) arg-max.
    """
    model.eval()
    total, probs, preds = 0.0, [], []
    for x, y in loader:
        logits = model(x.to(device))
        total += loss_fn(logits, y.to(device)).item() * len(x)
        if task == "classification":
            p = logits.sigmoid()
            probs.append(p.float().cpu().numpy())
            preds.append((p >= 0.5).cpu().numpy())
        else:
            p = logits.softmax(dim=1)
            probs.append((p * PROB_SCALE).round().to(torch.uint8).cpu().numpy())
            preds.append(p.argmax(dim=1).to(torch.uint8).cpu().numpy())
    return total / len(loader.dataset), np.concatenate(probs), np.concatenate(preds)


def score(task: str, cache: Cache, idx: np.ndarray, probs: np.ndarray,
          preds: np.ndarray) -> dict[str, float]:
    if task == "classification":
        return classification_scores(probs, cache.labels[idx], preds)
    return segmentation_scores(preds, np.asarray(cache.masks[idx]), len(cache.class_names) + 1)


def monitored_metric(s: TrainSettings) -> str:
    valid = TASK_METRICS[s.task]
    metric = s.monitor or valid[0]
    if metric not in valid:
        raise ConfigError(f"{s.task}.selection_metric '{metric}' is unknown; valid: {list(valid)}")
    return metric


def checkpoint_payload(model: nn.Module, s: TrainSettings, cache: Cache, epoch: int,
                       value: float) -> dict[str, Any]:
    # Plain types and tensors only, so torch.load(weights_only=True) can read it back.
    meta = {"task": s.task, "model": s.model, "arch": s.arch, "model_params": s.model_params,
            "num_outputs": num_outputs(s.task, len(cache.class_names)),
            "class_names": list(cache.class_names), "image_size": int(cache.images.shape[1]),
            "epoch": epoch, "monitor": monitored_metric(s), "score": float(value)}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {"state_dict": state, "meta": meta}


def train_cell(cache_dir: str | Path, folds_csv: str | Path, fold: int, settings: dict[str, Any],
               checkpoint_path: str | Path, metrics_path: str | Path, oof_path: str | Path,
               threads: int = 1) -> None:
    """Train one cell and write its checkpoint, per-epoch metrics CSV and OOF probabilities."""
    s = TrainSettings.from_dict(settings)
    metric = monitored_metric(s)
    generator = seed_everything(s.seed + fold, threads)
    cache = load_cache(cache_dir)
    train_idx, val_idx = split_indices(read_folds(folds_csv, cache.ids), fold, cache_dir)
    device = pick_device()
    model = build_model(s.task, s.arch, num_outputs(s.task, len(cache.class_names)),
                        **s.model_params).to(device)
    loss_fn = build_loss(s.task, s.criterion or s.loss, **s.loss_params)
    optimizer = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, s.epochs))
    train_loader, val_loader = make_loaders(cache, s, train_idx, val_idx, generator,
                                           s.seed + fold)
    log.info("cell %s/%s/%s fold %d: %d train, %d val images on %s", s.task, s.model, s.loss,
             fold, len(train_idx), len(val_idx), device)
    rows, best, best_probs, stale = [], -np.inf, None, 0
    for epoch in range(1, s.epochs + 1):
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        train_loss = train_one_epoch(model, train_loader, loss_fn, optimizer, device)
        scheduler.step()
        val_loss, probs, preds = evaluate(model, val_loader, loss_fn, device, s.task)
        scores = score(s.task, cache, val_idx, probs, preds)
        improved = scores[metric] > best
        if improved:
            best, best_probs, stale = scores[metric], probs, 0
            torch_save(checkpoint_path, checkpoint_payload(model, s, cache, epoch, best))
        else:
            stale += 1
        rows.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                     **{f"val_{k}": v for k, v in scores.items()}, "lr": lr,
                     "seconds": time.perf_counter() - start})
        log.info("epoch %d/%d train_loss %.4f val_loss %.4f val_%s %.4f%s", epoch, s.epochs,
                 train_loss, val_loss, metric, scores[metric], " *" if improved else "")
        if s.patience and stale >= s.patience:
            log.info("early stop: no val_%s gain for %d epochs", metric, stale)
            break
    write_metrics(metrics_path, rows, s, fold, metric)
    write_oof(oof_path, cache, val_idx, best_probs)


def write_metrics(path: str | Path, rows: list[dict], s: TrainSettings, fold: int,
                  metric: str) -> None:
    frame = pd.DataFrame(rows)
    frame["is_best"] = (frame.index == frame[f"val_{metric}"].idxmax()).astype(int)
    frame.insert(0, "fold", fold)
    for i, (key, value) in enumerate((("task", s.task), ("model", s.model), ("loss", s.loss))):
        frame.insert(i, key, value)
    write_csv(path, frame)


def write_oof(path: str | Path, cache: Cache, val_idx: np.ndarray, probs: np.ndarray) -> None:
    ids = np.asarray([cache.ids[i] for i in val_idx])
    scale = 1 if probs.dtype != np.uint8 else PROB_SCALE
    save_npz(path, ids=ids, index=val_idx, probs=probs, scale=np.asarray(scale))
