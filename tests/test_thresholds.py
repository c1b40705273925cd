"""Per-class thresholds: the histogram path equals the naive loop; the decision rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from vocflow import metrics
from vocflow import thresholds as T
from vocflow.errors import ConfigError, DataError

SEG_GRID = T.make_grid(0.0, 0.99, 100)
CLS_GRID = T.make_grid(0.0, 1.0, 101)


def random_seg(seed: int, n: int = 5, k: int = 6, s: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Quantised softmax-like probabilities with ties: shared values, grid hits, saturation."""
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 256, (n, k, s, s)).astype(np.uint8)
    q[:, 1] = 51  # a constant class: q / 255 = 0.2 sits on a grid value, every threshold ties
    q[0, 2] = rng.choice([0, 51, 102, 255], size=(s, s))  # values on and off the grid
    q[:, 3, :, : s // 2] = 0  # never a candidate there
    masks = rng.integers(0, k, (n, s, s)).astype(np.uint8)
    masks[:, 0, :] = 255  # void rows
    masks[masks == 4] = 0  # class 4 absent from truth: its best is no candidate at all
    return q, masks


@pytest.mark.parametrize("objective", T.OBJECTIVES.names())
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_histogram_curves_equal_naive_loop(seed: int, objective: str) -> None:
    q, masks = random_seg(seed)
    fast = T.segmentation_curves(q, masks, SEG_GRID, objective=objective)
    naive = T.naive_segmentation_curves(q, masks, SEG_GRID, objective=objective)
    np.testing.assert_array_equal(fast, naive)
    np.testing.assert_array_equal(T.pick_thresholds(fast, SEG_GRID),
                                  T.pick_thresholds(naive, SEG_GRID))


def test_more_than_256_images_equal_naive_loop() -> None:
    q, masks = random_seg(5, n=300, k=5, s=3)  # the histogram runs in chunks of 256 images
    np.testing.assert_array_equal(T.segmentation_curves(q, masks, SEG_GRID, objective="image_dice"),
                                  T.naive_segmentation_curves(q, masks, SEG_GRID,
                                                              objective="image_dice"))


def test_ties_pick_the_lowest_threshold() -> None:
    q, masks = random_seg(0)
    curves = T.segmentation_curves(q, masks, SEG_GRID)
    # Class 1 is float32(51 / 255) > 0.2 everywhere: t = 0.00 .. 0.20 give the same (all-pixel)
    # candidate mask, t >= 0.21 none; the tie goes to the lowest threshold.
    assert (curves[1, :21] == curves[1, 0]).all() and curves[1, 21] < curves[1, 0]
    assert T.pick_thresholds(curves, SEG_GRID)[1] == 0.0


def test_pooled_dice_by_hand() -> None:
    # One 2x2 image, K=2; class 1 probabilities 0.2, 0.4, 0.6, 0.8; truth: class 1 at the last
    # two pixels. t=0.5 -> candidates {0.6, 0.8}: Dice 1; t=0.3 -> 3 candidates: 2*2/(3+2) = 0.8.
    p1 = np.array([[51, 102], [153, 204]], np.uint8)
    q = np.stack([255 - p1, p1])[None]
    masks = np.array([[[0, 0], [1, 1]]], np.uint8)
    grid = np.array([0.3, 0.5, 0.7])
    curves = T.segmentation_curves(q, masks, grid)
    np.testing.assert_allclose(curves[1], [0.8, 1.0, 2 * 1 / (1 + 2)])
    assert T.pick_thresholds(curves, grid)[1] == 0.5


def test_image_dice_skips_images_without_the_class() -> None:
    # Image 0 has class 1 (perfect at t=0.5); image 1 has neither truth nor candidate: skipped.
    q = np.zeros((2, 2, 1, 2), np.uint8)
    q[0, 1] = [[200, 0]]
    masks = np.array([[[1, 0]], [[0, 0]]], np.uint8)
    curves = T.segmentation_curves(q, masks, np.array([0.5]), objective="image_dice")
    assert curves[1, 0] == 1.0


def test_unknown_objective_lists_valid_names() -> None:
    q, masks = random_seg(0)
    with pytest.raises(ConfigError, match="dice, image_dice"):
        T.segmentation_curves(q, masks, SEG_GRID, objective="iou")


def naive_classification(p: np.ndarray, labels: np.ndarray, grid: np.ndarray) -> np.ndarray:
    out = np.empty((p.shape[1], len(grid)))
    for j, t in enumerate(grid):
        c = metrics.multilabel_counts(p >= t, labels)
        f1 = metrics.f1_from_counts(c.tp, c.fp, c.fn)
        out[:, j] = np.where(np.isnan(f1), 1.0, f1)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_curves_equal_naive_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.random((30, 6)).astype(np.float32)
    p[:, 0] = 0.5  # ties on a grid value
    p[:5, 1] = 1.0
    labels = rng.integers(0, 2, (30, 6))
    labels[:, 2] = 0  # a class never present: F1 0/0 counts as 1
    fast = T.classification_curves(p, labels, CLS_GRID)
    np.testing.assert_array_equal(fast, naive_classification(p, labels, CLS_GRID))
    assert T.pick_thresholds(fast, CLS_GRID)[2] > p[:, 2].max()


def test_classification_by_hand() -> None:
    p = np.array([[0.9], [0.6], [0.3], [0.1]], np.float32)
    labels = np.array([[1], [1], [0], [0]])
    curves = T.classification_curves(p, labels, np.array([0.0, 0.5, 0.95]))
    np.testing.assert_allclose(curves[0], [2 * 2 / (4 + 2), 1.0, 0.0])
    np.testing.assert_array_equal(T.apply_classification(p, [0.5]), [[1], [1], [0], [0]])


def test_apply_segmentation_rule_by_hand() -> None:
    # Four pixels, K=3, t = (0.95, 0.2, 0.5). a: classes 1 and 2 qualify, 2 has the higher p;
    # b: class 2 has the top p but misses its threshold, class 1 qualifies; c: nothing qualifies
    # -> background; d: background itself qualifies.
    pixels = np.array([[0.1, 0.3, 0.6], [0.2, 0.35, 0.45], [0.9, 0.05, 0.05], [0.96, 0.02, 0.02]])
    probs = pixels.T[:, None, :]  # (K, 1, 4)
    t = np.array([0.95, 0.2, 0.5])
    np.testing.assert_array_equal(T.apply_segmentation(probs, t), [[2, 1, 0, 0]])


@pytest.mark.parametrize("seed", [0, 1])
def test_labels_never_leave_0_to_20(seed: int) -> None:
    rng = np.random.default_rng(seed)
    probs = rng.random((2, 21, 9, 9))
    for t in (np.zeros(21), np.ones(21), rng.random(21)):
        labels = T.apply_segmentation(probs, t)
        assert labels.dtype == np.uint8 and labels.shape == (2, 9, 9)
        assert labels.min() >= 0 and labels.max() <= 20
    with pytest.raises(DataError, match="20 thresholds for 21 classes"):
        T.apply_segmentation(probs, np.zeros(20))


def test_grid_and_threshold_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="post.thresholds"):
        T.make_grid(0.5, 0.2, 10)
    path = tmp_path / "thr.yaml"
    path.write_text(yaml.safe_dump({"thresholds": {"a": 0.2, "b": 1.5}}))
    with pytest.raises(DataError, match="no threshold for c"):
        T.read_thresholds(path, ["a", "c"])
    with pytest.raises(DataError, match="outside"):
        T.read_thresholds(path, ["a", "b"])




def test_write_and_read_thresholds(tmp_path: Path) -> None:
    curves = np.array([[0.1, 0.5, 0.2], [0.3, 0.3, 0.1]])
    grid = np.array([0.0, 0.5, 1.0])
    t = T.pick_thresholds(curves, grid)
    T.write_thresholds(t, curves, grid, ["background", "cat"], {"task": "segmentation"},
                       tmp_path / "t.yaml", tmp_path / "c.csv")
    np.testing.assert_array_equal(T.read_thresholds(tmp_path / "t.yaml", ["cat", "background"]),
                                  [0.0, 0.5])
    frame = pd.read_csv(tmp_path / "c.csv")
    assert list(frame.columns) == ["class", "threshold", "score"] and len(frame) == 6
    assert frame[frame["class"] == "cat"]["score"].tolist() == [0.3, 0.3, 0.1]
