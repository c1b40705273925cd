"""Prediction with the selected cell: fold ensemble, optional flip TTA, original size.

The ensemble averages the fold models' probabilities; segmentation probabilities are resized
bilinearly to each image's original size before any decision, so masks match the raw images.

The workflow's path: ``predict_probs`` (ensemble + TTA probabilities of the test split, stored
like the OOF files) -> ``post_test_shard`` (thresholds, CRF, reconciliation, one job per shard)
-> ``gather_test`` (the test_predictions.npz files the submission reads). ``predict_oof_tta``
re-predicts each fold's validation images with that fold's model and flips, for the ablation.
``predict_test`` is the plain ensemble arg-max (no thresholds, no CRF).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
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
from vocflow.train import PROB_SCALE, pick_device

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


def load_models(selected: dict[str, Any], cache: Cache, cache_dir: str | Path,
                device: torch.device) -> list[nn.Module]:
    """The selected cell's fold models, in fold order, checked against the cache's image size."""
    loaded = [load_checkpoint(p, device) for p in selected["checkpoints"]]
    size = cache.images.shape[1]
    for path, (_, meta) in zip(selected["checkpoints"], loaded, strict=True):
        if meta["image_size"] != size:
            raise DataError(f"{path} was trained at {meta['image_size']} px but the cache "
                            f"{cache_dir} is {size} px; re-run the workflow after changing "
                            "data.image_size")
    return [m for m, _ in loaded]


def predict_test(cache_dir: str | Path, selection_yaml: str | Path, out_path: str | Path,
                 batch_size: int = 16, tta: bool = False, threads: int = 1) -> None:
    """Predict the test cache with every fold model of the selected cell; write an .npz."""
    torch.set_num_threads(max(1, threads))
    selected = read_selection(selection_yaml)
    device = pick_device()
    cache = load_cache(cache_dir)
    models = load_models(selected, cache, cache_dir, device)
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


# --------------------------------------------------------------------------- probabilities


def stored_probs(models: list[nn.Module], images: np.ndarray, task: str, batch_size: int,
                 tta: bool, device: torch.device) -> np.ndarray:
    """Mean probabilities of ``models`` on (N, S, S, 3) uint8 images, stored like OOF files.

    classification (N, C) float32; segmentation (N, K, S, S) uint8 with p = q / PROB_SCALE.
    """
    out = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(normalize(np.asarray(images[start:start + batch_size]))).to(device)
        p = ensemble_probs(models, x, task, tta)
        out.append(p.float().cpu().numpy() if task == "classification" else
                   (p * PROB_SCALE).round().to(torch.uint8).cpu().numpy())
    return np.concatenate(out)


def predict_probs(cache_dir: str | Path, selection_yaml: str | Path, out_path: str | Path,
                  batch_size: int = 16, tta: bool = False, threads: int = 1,
                  per_fold: bool = False) -> None:
    """Ensemble (+ flip TTA) probabilities of a split: ids, probs, scale[, fold_probs (F, ...)].

    ``per_fold`` adds each fold model's own probabilities, for the ensemble's ablation row.
    """
    torch.set_num_threads(max(1, threads))
    selected, device, cache = read_selection(selection_yaml), pick_device(), load_cache(cache_dir)
    models = load_models(selected, cache, cache_dir, device)
    task = selected["task"]
    probs = stored_probs(models, cache.images, task, batch_size, tta, device)
    extra = {}
    if per_fold:
        extra["fold_probs"] = np.stack([stored_probs([m], cache.images, task, batch_size, tta,
                                                     device) for m in models])
    scale = 1 if task == "classification" else PROB_SCALE
    save_npz(out_path, ids=np.asarray(cache.ids), probs=probs, scale=np.asarray(scale), **extra)
    log.info("%s probabilities of %d images from %d fold models (tta=%s, per_fold=%s)", task,
             len(cache), len(models), tta, per_fold)


def predict_oof_tta(train_cache_dir: str | Path, selection_yaml: str | Path,
                    out_path: str | Path, batch_size: int = 16, threads: int = 1) -> None:
    """Fold k's model re-predicts fold k's validation images with flip TTA (OOF-shaped .npz)."""
    from vocflow.thresholds import load_oof

    torch.set_num_threads(max(1, threads))
    selected, device = read_selection(selection_yaml), pick_device()
    cache = load_cache(train_cache_dir)
    models = load_models(selected, cache, train_cache_dir, device)
    oof = load_oof(selected)
    parts = []
    for k, model in enumerate(models):
        images = cache.images[oof["index"][oof["fold"] == k]]  # fancy index: an (n, S, S, 3) copy
        parts.append(stored_probs([model], images, selected["task"], batch_size, True, device))
    scale = 1 if selected["task"] == "classification" else PROB_SCALE
    save_npz(out_path, ids=oof["ids"], index=oof["index"], probs=np.concatenate(parts),
             scale=np.asarray(scale))
    log.info("OOF flip-TTA re-prediction of %d images by %d fold models", len(oof["ids"]),
             len(models))


# --------------------------------------------------------------------------- test post-processing


def _load_npz(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _test_inputs(cache: Cache, probs_npzs: Mapping[str, str | Path]) -> dict[str, dict]:
    out = {task: _load_npz(path) for task, path in probs_npzs.items()}
    for task, npz in out.items():
        if list(npz["ids"]) != list(cache.ids):
            raise DataError(f"{probs_npzs[task]} does not match the test split; re-run: "
                            "snakemake --forcerun predict")
    return out


def post_image(pipe: Any, cls_probs: np.ndarray, seg_probs: np.ndarray, scale: float,
               image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Final (labels (C,), mask (H, W)) of one image: thresholds, CRF when kept, reconcile."""
    from vocflow.ablation import reconcile
    from vocflow.crf import segment
    from vocflow.thresholds import apply_classification

    mask = segment(image, seg_probs, scale, pipe.seg_thresholds,
                   pipe.crf_params if pipe.crf_keep else None)
    labels = apply_classification(cls_probs, pipe.cls_thresholds)
    return reconcile(pipe.reconcile, labels, mask, pipe.num_classes), mask


def post_test_shard(test_cache_dir: str | Path, probs_npzs: Mapping[str, str | Path],
                    thresholds: Mapping[str, str | Path], crf_yaml: str | Path,
                    reconcile_mode: str, shards: int, shard: int, out_npz: str | Path,
                    threads: int = 1) -> None:
    """Thresholds, CRF and reconciliation for this shard of the test split.

    With ``fold_probs`` in the inputs and test labels, the same pipeline also runs per fold
    model and both are scored (the +ensemble ablation row).
    """
    from vocflow.ablation import Pipeline, Tally
    from vocflow.crf import read_crf, shard_positions
    from vocflow.thresholds import class_names_for, read_thresholds

    torch.set_num_threads(max(1, threads))  # shards share the node: no oversubscription
    cache = load_cache(test_cache_dir)
    probs = _test_inputs(cache, probs_npzs)
    c = len(cache.class_names)
    keep, params = read_crf(crf_yaml)
    pipe = Pipeline(read_thresholds(thresholds["classification"], cache.class_names),
                    read_thresholds(thresholds["segmentation"],
                                    class_names_for("segmentation", cache.class_names)),
                    keep, params, reconcile_mode, False, c)
    cls, seg = probs["classification"], probs["segmentation"]
    n_folds = len(seg["fold_probs"]) if "fold_probs" in seg and cache.labelled else 0
    rows = shard_positions(len(cache), shards, shard)
    tallies = [Tally(c) for _ in range(n_folds + 1)]  # ensemble first, then each fold
    labels, masks = [], []
    for i in rows:
        image = cache.original_image(int(i))
        lab, mask = post_image(pipe, cls["probs"][i], seg["probs"][i], seg["scale"], image)
        labels.append(lab)
        masks.append(mask.ravel())
        if cache.labelled:
            _score(tallies[0], lab, mask, cache, int(i))
        for k in range(n_folds):
            f_lab, f_mask = post_image(pipe, cls["fold_probs"][k][i], seg["fold_probs"][k][i],
                                       seg["scale"], image)
            _score(tallies[k + 1], f_lab, f_mask, cache, int(i))
    arrays = {k: v for j, t in enumerate(tallies) for k, v in t.arrays(f"t{j}_").items()}
    save_npz(out_npz, rows=rows, labels=np.asarray(labels, np.uint8).reshape(len(rows), c),
             masks=np.concatenate(masks) if masks else np.zeros(0, np.uint8),
             folds=np.asarray(n_folds), labelled=np.asarray(cache.labelled), **arrays)
    log.info("test post-processing shard %d/%d: %d images (CRF %s, %d fold references)", shard,
             shards, len(rows), "on" if keep else "off", n_folds)


def _score(tally: Any, labels: np.ndarray, mask: np.ndarray, cache: Cache, i: int) -> None:
    tally.add_labels(labels, cache.labels[i])
    tally.add_mask(mask, cache.original_mask(i))


def gather_test(shard_npzs: list[str | Path], test_cache_dir: str | Path,
                classification_probs: str | Path, out_classification: str | Path,
                out_segmentation: str | Path, out_yaml: str | Path) -> None:
    """Assemble the shards into the test_predictions.npz files and test_ensemble.yaml."""
    from vocflow.ablation import Tally
    from vocflow.config import TASKS
    from vocflow.io import write_yaml

    cache = load_cache(test_cache_dir)
    parts = sorted((_load_npz(p) for p in shard_npzs), key=lambda p: int(p["rows"][0])
                   if len(p["rows"]) else -1)
    rows = np.concatenate([p["rows"] for p in parts])
    if sorted(rows.tolist()) != list(range(len(cache))):
        raise DataError(f"the test shards do not cover the {len(cache)} test images once; "
                        "re-run: snakemake --forcerun post_test_shard")
    labels = np.zeros((len(cache), len(cache.class_names)), np.uint8)
    labels[rows] = np.concatenate([p["labels"] for p in parts])
    masks = _reorder_masks(parts, rows, cache)
    cls = _load_npz(classification_probs)
    save_npz(out_classification, ids=np.asarray(cache.ids), probs=cls["probs"], labels=labels)
    save_npz(out_segmentation, ids=np.asarray(cache.ids), masks=masks, heights=cache.heights,
             widths=cache.widths)
    n_folds, c = int(parts[0]["folds"]), len(cache.class_names)
    summary: dict[str, Any] = {"labelled": bool(cache.labelled), "images": len(cache)}
    if cache.labelled:
        merged = [Tally.merge(parts, f"t{j}_", c) for j in range(n_folds + 1)]
        summary["ensemble"] = {t: merged[0].scores(t) for t in TASKS}
        summary["folds"] = [{t: m.scores(t) for t in TASKS} for m in merged[1:]]
    write_yaml(out_yaml, _plain(summary))
    log.info("test predictions gathered from %d shards", len(parts))


def _reorder_masks(parts: list[dict], rows: np.ndarray, cache: Cache) -> np.ndarray:
    """Flat masks of the shards (in shard order) -> flat masks in test-cache order."""
    sizes = (cache.heights * cache.widths).astype(np.int64)
    pieces = np.split(np.concatenate([p["masks"] for p in parts]), np.cumsum(sizes[rows])[:-1])
    by_row = dict(zip(rows.tolist(), pieces, strict=True))
    return np.concatenate([by_row[i] for i in range(len(cache))])


def _plain(value: Any) -> Any:
    """Floats and dicts YAML can write (NaN stays NaN)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return float(value) if isinstance(value, np.floating) else value
