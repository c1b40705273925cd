"""The post-processing pipeline of one image, its tallies and its shards: reconciliation by
hand, tallies that add up across shards, the pipeline read from the tuned files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from vocflow.artifacts import TASKS, class_names_for
from vocflow.errors import ConfigError
from vocflow.postprocess import (
    RECONCILE,
    Pipeline,
    Tally,
    post_image,
    reconcile,
    sample_positions,
    segment,
    shard_positions,
    upsample,
)

MASK = np.array([[0, 2], [2, 255]], np.uint8)  # classes 2 present, void ignored
EXPECTED = {"none": [1, 0, 0], "union": [1, 1, 0], "intersection": [0, 0, 0], "mask": [0, 1, 0]}


@pytest.mark.parametrize("mode", RECONCILE.names())
def test_reconcile_modes_by_hand(mode: str) -> None:
    got = reconcile(mode, np.array([1, 0, 0]), MASK, 3)
    assert got.dtype == np.uint8 and got.tolist() == EXPECTED[mode]


def test_unknown_reconcile_mode_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="intersection, mask, none, union"):
        reconcile("vote", np.zeros(3), MASK, 3)


def test_tally_scores_by_hand() -> None:
    t = Tally(2)
    t.add_labels(np.array([1, 0]), np.array([1, 1]))  # Dice 2*1/(1+2)
    t.add_labels(np.array([0, 0]), np.array([0, 0]))  # both empty: 1
    t.add_mask(np.array([[1, 1], [0, 2]]), np.array([[1, 0], [0, 255]]))
    assert t.cls_dice == pytest.approx([2 / 3, 1.0])
    # Kaggle stack Dice: pred {1: 2 px, 2: 1 px} vs truth {1: 1 px}; 2*1 / (3 + 1).
    assert t.seg_dice == pytest.approx([0.5])
    scores = t.scores("segmentation")
    # Confusion (void skipped): bg->bg 1, bg->1 1, 1->1 1. IoU: bg 1/2, c1 1/2, c2 absent.
    assert scores["miou"] == pytest.approx(0.5) and scores["kaggle"] == pytest.approx(0.5)
    assert t.scores("classification")["f1"] == pytest.approx(np.mean([1.0, 0.0]))


def test_tallies_merge_like_one_pass() -> None:
    rng = np.random.default_rng(0)
    items = [(rng.integers(0, 2, 3), rng.integers(0, 2, 3), rng.integers(0, 4, (4, 5)),
              rng.integers(0, 4, (4, 5))) for _ in range(6)]
    whole, parts = Tally(3), [Tally(3), Tally(3)]
    for i, (pl, tl, pm, tm) in enumerate(items):
        for t in (whole, parts[i % 2]):
            t.add_labels(pl, tl)
            t.add_mask(pm, tm)
    merged = Tally.merge([p.arrays("x_") for p in parts], "x_", 3)
    for task in TASKS:
        assert merged.scores(task) == pytest.approx(whole.scores(task), nan_ok=True)


def test_upsample_keeps_size_and_scale() -> None:
    q = np.random.default_rng(0).integers(0, 256, (3, 8, 8)).astype(np.uint8)
    np.testing.assert_allclose(upsample(q, 255, 8, 8), q / 255, rtol=1e-6)
    assert upsample(q, 255, 13, 21).shape == (3, 13, 21)


@pytest.mark.parametrize("n, shards", [(10, 3), (2, 4), (7, 1), (0, 2)])
def test_shards_partition_positions(n: int, shards: int) -> None:
    parts = [shard_positions(n, shards, s) for s in range(shards)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(n))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1



def test_bad_shard_names_the_config_key() -> None:
    with pytest.raises(ConfigError, match="post.shards"):
        shard_positions(5, 2, 2)


def test_sample_positions_seeded_sorted_subset() -> None:
    a, b = sample_positions(20, 5, 3), sample_positions(20, 5, 3)
    assert np.array_equal(a, b) and len(a) == 5 and np.all(np.diff(a) > 0)
    assert np.array_equal(sample_positions(4, None, 0), np.arange(4))


def write_pipeline(tmp_path: Path, mode: str) -> Pipeline:
    names = ["cat", "dog"]
    for task, t in (("classification", [0.6, 0.2]), ("segmentation", [0.0, 0.5, 0.5])):
        table = dict(zip(class_names_for(task, names), t, strict=True))
        (tmp_path / f"{task}.yaml").write_text(yaml.safe_dump({"thresholds": table}))
    (tmp_path / "crf.yaml").write_text(yaml.safe_dump({"keep": False, "params": None}))
    files = {t: tmp_path / f"{t}.yaml" for t in TASKS}
    return Pipeline.read(names, files, tmp_path / "crf.yaml", mode)


@pytest.mark.parametrize("mode, final", [("none", [1, 1]), ("mask", [1, 0])])
def test_post_image_by_hand(tmp_path: Path, mode: str, final: list[int]) -> None:
    """Thresholds 0.6 / 0.2 turn p = (0.7, 0.3) into labels (1, 1); in the mask only 'cat' (1)
    passes its 0.5 threshold, so reconcile 'mask' keeps cat alone."""
    pipe = write_pipeline(tmp_path, mode)
    seg = np.zeros((3, 2, 2), np.uint8)
    seg[1] = 204  # cat: p = 0.8 everywhere
    seg[2] = 51  # dog: p = 0.2 < 0.5
    post = post_image(pipe, np.array([0.7, 0.3], np.float32), seg, 255,
                      np.zeros((4, 6, 3), np.uint8))
    assert post.labels.tolist() == [1, 1] and post.final.tolist() == final
    assert post.mask.shape == (4, 6) and (post.mask == 1).all()
    np.testing.assert_array_equal(post.mask, segment(np.zeros((4, 6, 3), np.uint8), seg, 255,
                                                     pipe.seg_thresholds, None))


def test_pipeline_refuses_an_unknown_reconcile_mode(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="intersection, mask, none, union"):
        write_pipeline(tmp_path, "vote")
