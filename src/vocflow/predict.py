"""Prediction with the selected cell: fold ensemble, optional flip TTA, at original size.

The workflow's path: ``predict_probs`` (ensemble + TTA probabilities of the test split, stored
like the OOF files) -> ``post_test_shard`` (the post-processing pipeline of vocflow.postprocess,
one job per shard) -> ``gather_test`` (the test_predictions.npz files the submission reads).
``predict_oof_tta`` re-predicts each fold's validation images with that fold's model and flips,
for the ablation. The ensemble averages the fold models' probabilities; segmentation
probabilities are upsampled to each image's original size before any decision.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vocflow.artifacts import PROB_SCALE, TASKS, Selection, load_npz, write_oof
from vocflow.atomic import save_npz, write_yaml
from vocflow.checkpoints import input_side, load_fold_models, load_models
from vocflow.data.cache import Cache, load_cache
from vocflow.data.transforms import normalize
from vocflow.errors import DataError
from vocflow.postprocess import Pipeline, Tally, post_image, shard_positions
from vocflow.runtime import pick_device, set_threads

log = logging.getLogger(__name__)


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


# --------------------------------------------------------------------------- probabilities


def model_images(models: Sequence[nn.Module], cache: Cache,
                 rows: np.ndarray | None = None) -> np.ndarray:
    """(n, s, s, 3) uint8 inputs of ``rows`` (default all) for ``models``.

    Models trained at their own side s (a variant's ``image_size``, wrapped in AtInputSize)
    get the originals resized to s, as in training (Cache.resampled), so they predict at s
    (segmentation probabilities (n, K, s, s), upsampled to the original size afterwards);
    otherwise the cache's images at its side S.
    """
    return cache.resampled(input_side(models, cache.image_size), rows, masks=False)[0]


def stored_probs(models: list[nn.Module], images: np.ndarray, task: str, batch_size: int,
                 tta: bool, device: torch.device) -> np.ndarray:
    """Mean probabilities of ``models`` on (N, S, S, 3) uint8 images, stored like OOF files.

    classification (N, C) float32; segmentation (N, K, S, S) uint8 with p = q / PROB_SCALE
    (S: the images' side).
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
                  per_fold: bool = False, refit_checkpoints: Sequence[str | Path] = (),
                  with_folds: bool = True, predictor_yaml: str | Path | None = None,
                  reconcile: str = "none") -> None:
    """Ensemble (+ flip TTA) probabilities of a split: ids, probs, scale[, fold_probs (F, ...)].

    With ``refit_checkpoints`` the prediction comes from the refit models, alone or (with
    ``with_folds``) averaged with the fold models, every model weighing the same.
    ``per_fold`` adds each fold model's own probabilities, for the ensemble's ablation row, and
    with refits also the fold ensemble's (``folds_probs``) and the refits' alone
    (``refit_probs``), for the +refit row. ``predictor_yaml`` records the models and TTA used,
    and the post-processing's ``reconcile`` mode, so ``vocflow predict`` applies the same
    pipeline to new images (vocflow.apply).
    """
    set_threads(threads)
    selected, device, cache = Selection.read(selection_yaml), pick_device(), load_cache(cache_dir)
    folds = load_fold_models(selected, cache.image_size, cache_dir, device)
    refits = load_models(refit_checkpoints, cache.image_size, cache_dir, device)
    models = (folds + refits if with_folds else refits) if refits else folds
    task = selected.task
    if predictor_yaml is not None:
        used = ((selected.checkpoints if with_folds else []) + [str(p) for p in refit_checkpoints]
                if refits else selected.checkpoints)
        write_yaml(predictor_yaml, {"task": task, "checkpoints": used, "tta": bool(tta),
                                    "image_size": cache.image_size, "reconcile": reconcile,
                                    "class_names": list(cache.class_names)})

    def probs_of(members: list[nn.Module]) -> np.ndarray:
        return stored_probs(members, model_images(members, cache), task, batch_size, tta,
                            device)

    probs = probs_of(models)
    extra = {}
    if per_fold:
        extra["fold_probs"] = np.stack([probs_of([m]) for m in folds])
        if refits:
            extra["folds_probs"], extra["refit_probs"] = probs_of(folds), probs_of(refits)
    scale = 1 if task == "classification" else PROB_SCALE
    save_npz(out_path, ids=np.asarray(cache.ids), probs=probs, scale=np.asarray(scale), **extra)
    log.info("%s probabilities of %d images from %d fold and %d refit models (tta=%s, "
             "per_fold=%s)", task, len(cache), len(folds) if models is not refits else 0,
             len(refits), tta, per_fold)


def predict_oof_tta(train_cache_dir: str | Path, selection_yaml: str | Path,
                    out_path: str | Path, batch_size: int = 16, threads: int = 1) -> None:
    """Fold k's model re-predicts fold k's validation images with flip TTA (OOF-shaped .npz)."""
    set_threads(threads)
    selected, device = Selection.read(selection_yaml), pick_device()
    cache = load_cache(train_cache_dir)
    models = load_fold_models(selected, cache.image_size, train_cache_dir, device)
    oof = selected.load_oof()
    parts = []
    for k, model in enumerate(models):
        images = model_images([model], cache, oof["index"][oof["fold"] == k])
        parts.append(stored_probs([model], images, selected.task, batch_size, True, device))
    write_oof(out_path, oof["ids"], oof["index"], np.concatenate(parts))
    log.info("OOF flip-TTA re-prediction of %d images by %d fold models", len(oof["ids"]),
             len(models))


# --------------------------------------------------------------------------- test post-processing


def _test_inputs(cache: Cache, probs_npzs: Mapping[str, str | Path]) -> dict[str, dict]:
    out = {task: load_npz(path) for task, path in probs_npzs.items()}
    for task, npz in out.items():
        if list(npz["ids"]) != list(cache.ids):
            raise DataError(f"{probs_npzs[task]} does not match the test split; re-run: "
                            "snakemake --forcerun predict")
    return out


def post_test_shard(test_cache_dir: str | Path, probs_npzs: Mapping[str, str | Path],
                    thresholds: Mapping[str, str | Path], crf_yaml: str | Path,
                    reconcile_mode: str, shards: int, shard: int, out_npz: str | Path,
                    threads: int = 1) -> None:
    """The post-processing pipeline on this shard of the test split.

    With ``fold_probs`` in the inputs and test labels, the same pipeline also runs per fold
    model and both are scored (the +ensemble ablation row); with refits also on the fold
    ensemble and on the refits alone (the +refit row).
    """
    set_threads(threads)  # shards share the node: no oversubscription
    cache = load_cache(test_cache_dir)
    probs = _test_inputs(cache, probs_npzs)
    c = len(cache.class_names)
    pipe = Pipeline.read(cache.class_names, thresholds, crf_yaml, reconcile_mode)
    cls, seg = probs["classification"], probs["segmentation"]
    n_folds = len(seg["fold_probs"]) if "fold_probs" in seg and cache.labelled else 0
    # A task without refits lends its final probabilities to the other task's refit views.
    refit = n_folds > 0 and any("refit_probs" in p for p in (cls, seg))
    extra = ("folds_probs", "refit_probs") if refit else ()
    rows = shard_positions(len(cache), shards, shard)
    # The final prediction first, then each fold model, then the fold ensemble and the refits.
    tallies = [Tally(c) for _ in range(n_folds + 1 + len(extra))]
    labels, masks = [], []
    for i in rows.tolist():
        image = cache.original_image(i)
        views = [(cls["probs"][i], seg["probs"][i])]
        views += [(cls["fold_probs"][k][i], seg["fold_probs"][k][i]) for k in range(n_folds)]
        views += [(cls.get(name, cls["probs"])[i], seg.get(name, seg["probs"])[i])
                  for name in extra]
        for j, (cls_probs, seg_probs) in enumerate(views):
            post = post_image(pipe, cls_probs, seg_probs, seg["scale"], image)
            if j == 0:
                labels.append(post.final)
                masks.append(post.mask.ravel())
            if cache.labelled:
                tallies[j].add(post.final, post.mask, cache.labels[i], cache.original_mask(i))
    arrays = {k: v for j, t in enumerate(tallies) for k, v in t.arrays(f"t{j}_").items()}
    save_npz(out_npz, rows=rows, labels=np.asarray(labels, np.uint8).reshape(len(rows), c),
             masks=np.concatenate(masks) if masks else np.zeros(0, np.uint8),
             folds=np.asarray(n_folds), refit=np.asarray(refit),
             labelled=np.asarray(cache.labelled), **arrays)
    log.info("test post-processing shard %d/%d: %d images (CRF %s, %d fold references)", shard,
             shards, len(rows), "on" if pipe.crf_keep else "off", n_folds)


def gather_test(shard_npzs: list[str | Path], test_cache_dir: str | Path,
                classification_probs: str | Path, out_classification: str | Path,
                out_segmentation: str | Path, out_yaml: str | Path) -> None:
    """Assemble the shards into the test_predictions.npz files and test_ensemble.yaml."""
    cache = load_cache(test_cache_dir)
    parts = sorted((load_npz(p) for p in shard_npzs), key=lambda p: int(p["rows"][0])
                   if len(p["rows"]) else -1)
    rows = np.concatenate([p["rows"] for p in parts])
    if sorted(rows.tolist()) != list(range(len(cache))):
        raise DataError(f"the test shards do not cover the {len(cache)} test images once; "
                        "re-run: snakemake --forcerun post_test_shard")
    labels = np.zeros((len(cache), len(cache.class_names)), np.uint8)
    labels[rows] = np.concatenate([p["labels"] for p in parts])
    masks = _reorder_masks(parts, rows, cache)
    cls = load_npz(classification_probs)
    save_npz(out_classification, ids=np.asarray(cache.ids), probs=cls["probs"], labels=labels)
    save_npz(out_segmentation, ids=np.asarray(cache.ids), masks=masks, heights=cache.heights,
             widths=cache.widths)
    n_folds, c = int(parts[0]["folds"]), len(cache.class_names)
    summary: dict[str, Any] = {"labelled": bool(cache.labelled), "images": len(cache)}
    refit = bool(parts[0].get("refit", False))
    if cache.labelled:
        merged = [Tally.merge(parts, f"t{j}_", c) for j in range(n_folds + 1 + 2 * refit)]
        scores = [{t: m.scores(t) for t in TASKS} for m in merged]
        summary["ensemble"], summary["folds"] = scores[0], scores[1:n_folds + 1]
        if refit:
            summary["fold_ensemble"], summary["refit"] = scores[n_folds + 1:]
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
