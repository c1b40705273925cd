"""DenseCRF: it cleans a noisy unary along clean colour edges; the search and its decision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import write_selection

from vocflow import crf as C
from vocflow import metrics
from vocflow.artifacts import class_names_for, write_oof
from vocflow.crf_search import crf_search_shard, crf_tune
from vocflow.data.cache import load_cache
from vocflow.errors import ConfigError

SEARCH = {"sxy": [20, 40], "srgb": [10], "compat": [5], "iterations": [5], "gaussian_sxy": 3,
          "gaussian_compat": 3}


def crafted(seed: int = 0, noise: float = 0.35) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A red left half (class 1) and a blue right half (class 2); the unary flips 35% of pixels."""
    h, w = 32, 40
    image = np.zeros((h, w, 3), np.uint8)
    image[:, : w // 2] = (200, 30, 30)
    image[:, w // 2 :] = (30, 30, 200)
    truth = np.where(np.arange(w) < w // 2, 1, 2)[None].repeat(h, 0).astype(np.uint8)
    noisy = truth.copy()
    flip = np.random.default_rng(seed).random((h, w)) < noise
    noisy[flip] = 3 - noisy[flip]
    probs = np.full((3, h, w), 0.1, np.float32)
    np.put_along_axis(probs, noisy[None].astype(np.int64), 0.55, axis=0)
    probs[1:] += (probs[1:] == 0.1) * 0.25  # the other object class: 0.35
    return image, probs / probs.sum(axis=0), truth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crf_cleans_noisy_unary_along_colour_edges(seed: int) -> None:
    image, probs, truth = crafted(seed)
    before = metrics.kaggle_segmentation_dice(probs.argmax(0), truth, 2)
    refined = C.dense_crf(image, probs, C.CrfParams(sxy=20, srgb=10, compat=10, iterations=10))
    after = metrics.kaggle_segmentation_dice(refined.argmax(0), truth, 2)
    assert before < 0.75 and after > 0.95
    np.testing.assert_allclose(refined.sum(axis=0), 1.0, atol=1e-4)


def test_crf_accepts_read_only_images() -> None:
    image, probs, _ = crafted()
    image.flags.writeable = False  # cache images are read-only memory maps
    assert C.dense_crf(image, probs, C.CrfParams(iterations=1)).shape == probs.shape


def test_unknown_crf_key_and_grid() -> None:
    with pytest.raises(ConfigError, match="unknown CRF keys"):
        C.param_grid({"sigma": [1]})
    grid = C.param_grid(SEARCH)
    assert len(grid) == 2 and grid[1].sxy == 40 and grid[0].gaussian_sxy == 3


def fake_oof(tiny_data: dict, tmp_path: Path) -> tuple[Path, Path]:
    """An OOF file per fold with noisy one-hot probabilities of the cached masks."""
    cache = load_cache(tiny_data["train"])
    folds = pd.read_csv(tiny_data["folds"])["fold"].to_numpy()
    rng = np.random.default_rng(0)
    paths = []
    for k in (0, 1):
        idx = np.flatnonzero(folds == k)
        masks = np.minimum(np.asarray(cache.masks[idx]), 20).astype(np.int64)
        p = rng.random((len(idx), 21, 32, 32)) * 0.3
        np.put_along_axis(p, masks[:, None], 0.9, axis=1)
        q = np.round(p / p.sum(axis=1, keepdims=True) * 255).astype(np.uint8)
        paths.append(tmp_path / f"fold{k}.npz")
        write_oof(paths[-1], [cache.ids[i] for i in idx], idx, q)
    selection = write_selection(tmp_path / "selected.yaml", "segmentation",
                                [{"checkpoint": tmp_path / "none.pt", "oof": p} for p in paths])
    thresholds = tmp_path / "thresholds.yaml"
    names = class_names_for("segmentation", cache.class_names)
    thresholds.write_text(yaml.safe_dump({"thresholds": {n: 0.3 for n in names}}))
    return selection, thresholds


def test_sharded_search_equals_unsharded(tiny_data: dict, tmp_path: Path) -> None:
    selection, thresholds = fake_oof(tiny_data, tmp_path)

    def run(shards: int) -> pd.DataFrame:
        frames = []
        for s in range(shards):
            out = tmp_path / f"s{shards}_{s}.csv"
            crf_search_shard(selection, tiny_data["train"], thresholds, SEARCH, 7, 0, shards,
                               s, out)
            frames.append(pd.read_csv(out, dtype={"id": str}))
        table = pd.concat(frames).sort_values(["id", "setting"], kind="stable")
        return table.reset_index(drop=True)

    whole, split = run(1), run(3)
    pd.testing.assert_frame_equal(whole, split)
    assert whole["id"].nunique() == 7 and set(whole["setting"]) == {-1, 0, 1}


def search_csv(path: Path, means: dict[int, float]) -> Path:
    rows = [{"id": str(i), "setting": s, "kaggle": m + d} for s, m in means.items()
            for i, d in enumerate((-0.1, 0.1))]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("min_gain, keep", [(0.0, True), (0.2, False)])
def test_tune_keeps_crf_only_if_it_helps(tmp_path: Path, min_gain: float, keep: bool) -> None:
    a = search_csv(tmp_path / "a.csv", {-1: 0.5, 0: 0.6, 1: 0.55})
    crf_tune([a], SEARCH, min_gain, tmp_path / "crf.yaml")
    out = yaml.safe_load((tmp_path / "crf.yaml").read_text())
    assert out["keep"] is keep and out["params"]["sxy"] == 20
    assert out["gain"] == pytest.approx(0.1) and len(out["search"]) == 3
    kept, params = C.read_crf(tmp_path / "crf.yaml")
    assert kept is keep and params == C.CrfParams(**out["params"])


def test_tune_drops_crf_that_hurts_and_handles_disabled(tmp_path: Path) -> None:
    crf_tune([search_csv(tmp_path / "a.csv", {-1: 0.5, 0: 0.4, 1: 0.45})], SEARCH, 0.0,
               tmp_path / "crf.yaml")
    assert C.read_crf(tmp_path / "crf.yaml")[0] is False
    crf_tune([], SEARCH, 0.0, tmp_path / "off.yaml")
    assert C.read_crf(tmp_path / "off.yaml") == (False, None)
