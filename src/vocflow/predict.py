"""Test-set prediction with the selected cell: fold ensemble, optional flip TTA, original size.

The ensemble averages the fold models' probabilities; segmentation probabilities are resized
bilinearly to each image's original size before the arg-max, so masks match the raw images.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from vocflow.data.cache import Cache, load_cache
from vocflow.data.transforms import normalize
from vocflow.errors import DataError
from vocflow.io import save_npz
from vocflow.models import build_model
from vocflow.train import pick_device

log = logging.getLogger(__name__)


def load_checkpoint(path: str | Path, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model from a checkpoint written by ``vocflow.train``."""
    payload = torch.load(path, map_location=device, weights_only=True)
    meta = payload["meta"]
    model = build_model(meta["task"], meta["arch"], meta["num_outputs"], **meta["model_params"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), meta


def read_selection(path: str | Path) -> dict[str, Any]:
    selected = yaml.safe_load(Path(path).read_text())
    cell = f"{selected['task']}/{selected['model']}/{selected['loss']}"
    missing = [p for p in selected["checkpoints"] if not Path(p).is_file()]
    if missing:
        raise DataError(f"selected cell {cell} has no checkpoint {missing[0]}; re-run its "
                        "training (snakemake --forcerun on that file)")
    return selected


@torch.no_grad()
def ensemble_probs(models: list[nn.Module], x: torch.Tensor, task: str, tta: bool) -> torch.Tensor:
    """Mean probability over models (and horizontal flips): (B, C) or (B, K, S, S)."""
    total = 0
    for model in models:
        views = [(x, False), (x.flip(-1), True)] if tta else [(x, False)]
        for view, flipped in views:
            logits = model(view)
            p = logits.sigmoid() if task == "classification" else logits.softmax(dim=1)
            total = total + (p.flip(-1) if flipped and task == "segmentation" else p)
    return total / (len(models) * (2 if tta else 1))


def to_original_size(probs: torch.Tensor, height: int, width: int) -> np.ndarray:
    """(K, S, S) probabilities -> (H, W) uint8 arg-max at the original size."""
    resized = F.interpolate(probs[None], size=(height, width), mode="bilinear",
                            align_corners=False)[0]
    return resized.argmax(dim=0).to(torch.uint8).cpu().numpy()


def predict_split(cache: Cache, models: list[nn.Module], task: str, batch_size: int,
                  tta: bool, device: torch.device) -> dict[str, np.ndarray]:
    probs, masks = [], []
    for start in range(0, len(cache), batch_size):
        stop = min(start + batch_size, len(cache))
        x = torch.from_numpy(normalize(np.asarray(cache.images[start:stop]))).to(device)
        p = ensemble_probs(models, x, task, tta)
        if task == "classification":
            probs.append(p.cpu().numpy())
            continue
        for j, i in enumerate(range(start, stop)):
            masks.append(to_original_size(p[j], int(cache.heights[i]), int(cache.widths[i])))
    ids = np.asarray(cache.ids)
    if task == "classification":
        p = np.concatenate(probs)
        return {"ids": ids, "probs": p, "labels": (p >= 0.5).astype(np.uint8)}
    return {"ids": ids, "masks": np.concatenate([m.ravel() for m in masks]),
            "heights": cache.heights, "widths": cache.widths}


def predict_test(cache_dir: str | Path, selection_yaml: str | Path, out_path: str | Path,
                 batch_size: int = 16, tta: bool = False, threads: int = 1) -> None:
    """Predict the test cache with every fold model of the selected cell; write an .npz."""
    torch.set_num_threads(max(1, threads))
    selected = read_selection(selection_yaml)
    device = pick_device()
    cache = load_cache(cache_dir)
    loaded = [load_checkpoint(p, device) for p in selected["checkpoints"]]
    size = cache.images.shape[1]
    for path, (_, meta) in zip(selected["checkpoints"], loaded, strict=True):
        if meta["image_size"] != size:
            raise DataError(f"{path} was trained at {meta['image_size']} px but the test cache "
                            f"{cache_dir} is {size} px; re-run the workflow after changing "
                            "data.image_size")
    models = [m for m, _ in loaded]
    out = predict_split(cache, models, selected["task"], batch_size, tta, device)
    save_npz(out_path, **out)
    log.info("predicted %d test images with %d %s models (tta=%s)", len(cache), len(models),
             selected["task"], tta)


def read_masks(npz: dict[str, np.ndarray] | Any) -> list[np.ndarray]:
    """Split the flat ``masks`` array of a segmentation prediction file into (H, W) masks."""
    sizes = npz["heights"].astype(np.int64) * npz["widths"].astype(np.int64)
    parts = np.split(npz["masks"], np.cumsum(sizes)[:-1])
    return [p.reshape(int(h), int(w)) for p, h, w in zip(parts, npz["heights"], npz["widths"],
                                                         strict=True)]
