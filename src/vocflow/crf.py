"""DenseCRF refinement of segmentation probabilities, its parameter search, and sharding.

The CRF (Krähenbühl & Koltun 2011, via pydensecrf2) takes the unary from the softmax and adds a
Gaussian (smoothness) and a bilateral (appearance: position + colour) pairwise term. Its output
marginals are decoded with the same per-class threshold rule as the probabilities would be
(``vocflow.thresholds.apply_segmentation``): thresholds are the decision, the CRF only refines
the soft evidence, so the pipeline is probabilities -> [CRF] -> thresholds at original size.

Parameters are searched on a seeded sample of out-of-fold (OOF) images; CRF is kept only if the
best setting beats no CRF on that sample. Images are dealt to shards round-robin (``i % N``), one
job per shard, so a shard's result never depends on how many shards there are.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import yaml

from vocflow import metrics
from vocflow.errors import ConfigError, DataError
from vocflow.io import write_csv, write_yaml
from vocflow.thresholds import (
    apply_segmentation,
    class_names_for,
    load_oof,
    read_selection_yaml,
    read_thresholds,
)

log = logging.getLogger(__name__)
SEARCH_KEYS = ("sxy", "srgb", "compat", "iterations")


@dataclass(frozen=True)
class CrfParams:
    """One DenseCRF setting; the searched keys are ``SEARCH_KEYS``."""

    sxy: float = 80.0  # bilateral spatial std (px at original size)
    srgb: float = 13.0  # bilateral colour std (0..255 RGB units)
    compat: float = 10.0  # bilateral Potts weight
    iterations: int = 5  # mean-field steps
    gaussian_sxy: float = 3.0  # smoothness spatial std (px)
    gaussian_compat: float = 3.0  # smoothness Potts weight


def dense_crf(image: np.ndarray, probs: np.ndarray, params: CrfParams) -> np.ndarray:
    """(H, W, 3) uint8 image + (K, H, W) probabilities -> (K, H, W) float32 CRF marginals."""
    import pydensecrf.densecrf as dcrf  # local: a compiled extension only CRF jobs need
    from pydensecrf.utils import unary_from_softmax

    k, h, w = probs.shape
    if image.shape != (h, w, 3):
        raise DataError(f"CRF image {image.shape} does not match probabilities {probs.shape}")
    crf = dcrf.DenseCRF2D(w, h, k)
    # Clip: log(0) would make a class impossible no matter what the pairwise terms say.
    unary = unary_from_softmax(np.clip(probs, 1e-6, 1.0).astype(np.float32))
    crf.setUnaryEnergy(np.ascontiguousarray(unary))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_compat)
    crf.addPairwiseBilateral(sxy=params.sxy, srgb=params.srgb,
                             rgbim=np.array(image, dtype=np.uint8, order="C"),  # writable copy
                             compat=params.compat)
    return np.asarray(crf.inference(int(params.iterations)), np.float32).reshape(k, h, w)


def upsample(probs: np.ndarray, scale: float, height: int, width: int) -> np.ndarray:
    """(K, S, S) stored probabilities (p = q / scale) -> (K, H, W) float32, bilinear.

    Same interpolation as ``vocflow.predict.to_original_size``, so OOF and test agree.
    """
    p = torch.from_numpy(np.asarray(probs, np.float32) / np.float32(scale))
    return F.interpolate(p[None], size=(int(height), int(width)), mode="bilinear",
                         align_corners=False)[0].numpy()


def segment(image: np.ndarray, probs: np.ndarray, scale: float, thresholds: np.ndarray | None,
            params: CrfParams | None) -> np.ndarray:
    """The segmentation pipeline for one image: upsample -> [CRF] -> thresholds (or arg-max).

    image (H, W, 3) uint8; probs (K, S, S) stored probabilities; returns (H, W) uint8 labels.
    """
    p = upsample(probs, scale, image.shape[0], image.shape[1])
    if params is not None:
        p = dense_crf(image, p, params)
    if thresholds is None:
        return p.argmax(axis=0).astype(np.uint8)
    return apply_segmentation(p, thresholds)


# --------------------------------------------------------------------------- shards, grid


def shard_positions(n: int, shards: int, shard: int) -> np.ndarray:
    """Positions 0..n-1 of shard ``shard`` of ``shards`` (round-robin: sizes differ by <= 1)."""
    if shards < 1 or not 0 <= shard < shards:
        raise ConfigError(f"shard {shard} of {shards}: need 0 <= shard < shards and shards >= 1; "
                          "fix post.shards in config/config.yaml")
    return np.arange(shard, n, shards)


def sample_positions(n: int, size: int | None, seed: int) -> np.ndarray:
    """A sorted seeded sample of ``size`` positions out of n (all when size is None or >= n)."""
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def param_grid(search: Mapping[str, Any]) -> list[CrfParams]:
    """Every combination of the searched lists; the fixed Gaussian keys pass through."""
    unknown = sorted(set(search) - set(SEARCH_KEYS) - {"gaussian_sxy", "gaussian_compat"})
    if unknown:
        raise ConfigError(f"unknown CRF keys {unknown}; valid: {list(SEARCH_KEYS)} and "
                          "gaussian_sxy, gaussian_compat")
    fixed = {k: search[k] for k in ("gaussian_sxy", "gaussian_compat") if k in search}
    lists = [list(search.get(k, [getattr(CrfParams, k)])) for k in SEARCH_KEYS]
    return [CrfParams(**dict(zip(SEARCH_KEYS, combo, strict=True)), **fixed)
            for combo in itertools.product(*lists)]


# --------------------------------------------------------------------------- search and tune


def image_scores(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> tuple[float, np.ndarray]:
    """Kaggle Dice of one segmentation row and its (K, K) confusion (void ignored)."""
    cm = metrics.confusion_matrix(pred, truth, num_classes + 1)
    return metrics.kaggle_segmentation_dice(pred, truth, num_classes), cm


def crf_search_shard(selection_yaml: str | Path, train_cache_dir: str | Path,
                     thresholds_yaml: str | Path, search: Mapping[str, Any], sample: int | None,
                     seed: int, shards: int, shard: int, out_csv: str | Path,
                     threads: int = 1) -> None:
    """Score every CRF setting (and no CRF, ``setting = -1``) on this shard of the OOF sample.

    Writes one row per image x setting: id, setting, the setting's keys, kaggle (row Dice).
    """
    from vocflow.data.cache import load_cache  # local: keeps cv2 out of light imports

    torch.set_num_threads(max(1, threads))  # shards share the node: no oversubscription

    oof, cache = load_oof(read_selection_yaml(selection_yaml)), load_cache(train_cache_dir)
    thresholds = read_thresholds(thresholds_yaml, class_names_for("segmentation",
                                                                   cache.class_names))
    grid = param_grid(search)
    picked = sample_positions(len(oof["index"]), sample, seed)
    rows = []
    for pos in picked[shard_positions(len(picked), shards, shard)]:
        i = int(oof["index"][pos])
        image, truth = cache.original_image(i), cache.original_mask(i)
        for s, params in [(-1, None), *enumerate(grid)]:
            mask = segment(image, oof["probs"][pos], oof["scale"], thresholds, params)
            kaggle, _ = image_scores(mask, truth, len(cache.class_names))
            rows.append({"id": cache.ids[i], "setting": s,
                         **(asdict(params) if params else {}), "kaggle": kaggle})
    write_csv(out_csv, pd.DataFrame(rows, columns=["id", "setting", *asdict(CrfParams()),
                                                   "kaggle"]))
    log.info("CRF search shard %d/%d: %d images x %d settings", shard, shards,
             len(rows) // (len(grid) + 1) if rows else 0, len(grid))


def crf_tune(shard_csvs: Sequence[str | Path], search: Mapping[str, Any], min_gain: float,
             out_yaml: str | Path) -> None:
    """Gather the search shards; keep the best setting only if it beats no CRF by > min_gain."""
    frames = [pd.read_csv(p) for p in shard_csvs]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if table.empty:
        write_yaml(out_yaml, {"keep": False, "reason": "CRF disabled (post.crf.enabled) or no "
                              "search images", "params": None, "search": []})
        return
    grid = param_grid(search)
    means = table.groupby("setting")["kaggle"].agg(["mean", "count"])
    base = float(means.loc[-1, "mean"])
    tried = means.drop(index=-1).sort_values("mean", ascending=False, kind="stable")
    best = int(tried.index[0])
    gain = float(tried.iloc[0]["mean"]) - base
    keep = gain > min_gain
    rows = [{"setting": int(s), **(asdict(grid[int(s)]) if s >= 0 else {"crf": "none"}),
             "kaggle": float(r["mean"]), "images": int(r["count"])} for s, r in means.iterrows()]
    write_yaml(out_yaml, {"keep": bool(keep), "params": asdict(grid[best]),
                          "kaggle_without": base, "kaggle_with": base + gain, "gain": gain,
                          "min_gain": float(min_gain), "images": int(means.loc[-1, "count"]),
                          "search": rows})
    log.info("CRF %s: best setting %d gains %+.4f Kaggle Dice over no CRF on %d OOF images",
             "kept" if keep else "dropped", best, gain, int(means.loc[-1, "count"]))


def read_crf(path: str | Path) -> tuple[bool, CrfParams | None]:
    """(keep, params) from crf.yaml; params are the best searched ones even when not kept."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    params = data.get("params")
    return bool(data.get("keep")), CrfParams(**params) if params else None


def crf_panels(selection_yaml: str | Path, train_cache_dir: str | Path,
               thresholds_yaml: str | Path, crf_yaml: str | Path, n: int, seed: int,
               out_dir: str | Path) -> None:
    """Before/after PNGs of the searched CRF on ``n`` OOF images, for the report.

    Uses the best searched parameters even when CRF was not kept, so the report shows why.
    """
    from vocflow.data.cache import load_cache
    from vocflow.io import atomic_path
    from vocflow.report.figures import plt
    from vocflow.report.panels import crf_panel

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _, params = read_crf(crf_yaml)
    if params is None:
        log.info("no CRF parameters in %s: no panels", crf_yaml)
        return
    oof, cache = load_oof(read_selection_yaml(selection_yaml)), load_cache(train_cache_dir)
    thresholds = read_thresholds(thresholds_yaml, class_names_for("segmentation",
                                                                   cache.class_names))
    for pos in sample_positions(len(oof["index"]), n, seed):
        i = int(oof["index"][pos])
        image, truth = cache.original_image(i), cache.original_mask(i)
        masks = [segment(image, oof["probs"][pos], oof["scale"], thresholds, p)
                 for p in (None, params)]
        scores = tuple(image_scores(m, truth, len(cache.class_names))[0] for m in masks)
        fig = crf_panel(image, truth, *masks, scores, f"OOF image {cache.ids[i]}",
                        cache.class_names)
        with atomic_path(out / f"crf_{cache.ids[i]}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=80)
        plt.close(fig)
    log.info("CRF panels of %d OOF images written to %s", min(n, len(oof["index"])), out)
