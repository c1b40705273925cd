"""The study's files: selected.yaml, oof.npz and metrics.csv round trips, prediction masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vocflow.artifacts import (
    PROB_SCALE,
    Selection,
    read_masks,
    read_oof,
    write_metrics,
    write_oof,
)
from vocflow.errors import DataError


def selection(tmp_path: Path, folds: int = 2) -> Selection:
    return Selection(task="segmentation", model="unet", loss="ce", metric="kaggle", mean=0.5,
                     std=0.1, checkpoints=[str(tmp_path / f"fold{k}/best.pt") for k in
                                           range(folds)],
                     oof=[str(tmp_path / f"fold{k}/oof.npz") for k in range(folds)])


def test_missing_oof_names_the_cell(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="segmentation/unet/ce has no OOF file"):
        selection(tmp_path).load_oof()
    with pytest.raises(DataError, match="segmentation/unet/ce has no checkpoint"):
        selection(tmp_path).require_checkpoints()




def test_selection_round_trip(tmp_path: Path) -> None:
    sel = selection(tmp_path)
    sel.write(tmp_path / "selected.yaml")
    assert Selection.read(tmp_path / "selected.yaml") == sel
    assert sel.cell == "segmentation/unet/ce"


def test_oof_files_concatenate_in_fold_order_with_their_scale(tmp_path: Path) -> None:
    sel = selection(tmp_path)
    for k, path in enumerate(sel.oof):
        q = np.full((2, 3, 4, 4), 10 * (k + 1), np.uint8)
        write_oof(path, [f"{k}a", f"{k}b"], np.array([2 * k, 2 * k + 1]), q)
    one = read_oof(sel.oof[0])
    assert int(one["scale"]) == PROB_SCALE and one["ids"].tolist() == ["0a", "0b"]
    oof = sel.load_oof()
    assert oof["fold"].tolist() == [0, 0, 1, 1] and oof["index"].tolist() == [0, 1, 2, 3]
    assert oof["probs"][:, 0, 0, 0].tolist() == [10, 10, 20, 20] and oof["scale"] == 255
    write_oof(sel.oof[1], ["x"], np.array([4]), np.zeros((1, 3), np.float32))
    with pytest.raises(DataError, match="disagree on their scale"):
        sel.load_oof()


def test_metrics_mark_the_best_epoch(tmp_path: Path) -> None:
    rows = [{"epoch": e, "val_kaggle": v} for e, v in ((1, 0.2), (2, 0.7), (3, 0.5))]
    write_metrics(tmp_path / "m.csv", rows, {"task": "segmentation", "model": "unet",
                                             "loss": "ce"}, 1, "kaggle")
    frame = pd.read_csv(tmp_path / "m.csv")
    assert list(frame.columns[:4]) == ["task", "model", "loss", "fold"]
    assert frame["is_best"].tolist() == [0, 1, 0] and (frame["fold"] == 1).all()


def test_read_masks_splits_flat_masks_by_size() -> None:
    masks = [np.full((2, 3), 1, np.uint8), np.full((4, 1), 2, np.uint8)]
    npz = {"masks": np.concatenate([m.ravel() for m in masks]), "heights": np.array([2, 4]),
           "widths": np.array([3, 1])}
    for got, want in zip(read_masks(npz), masks, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("content", "found"), [
    (b"", "the file is empty"),
    (b"task: [unclosed", "not a complete YAML file"),
    (b"- just\n- a list\n", "it holds a list, not a YAML mapping"),
    (b"task: classification\nmodle: cnn\n", "not a complete selection"),
])
def test_broken_selection_names_the_command_that_rebuilds_it(tmp_path: Path, content: bytes,
                                                             found: str) -> None:
    path = tmp_path / "selected.yaml"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        Selection.read(path)
    message = str(info.value)
    assert found in message and f"snakemake --forcerun {path}" in message
    assert "\n" not in message


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"garbage" * 10])
def test_broken_npz_names_the_command_that_rebuilds_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "oof.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"cannot read {path}: .*snakemake --forcerun {path}"):
        read_oof(path)
