"""The random baseline, the leaderboard over folds, the selection, and prediction with the
selected cell through the workflow's path (no Snakemake)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import train_tiny

from vocflow.artifacts import Selection
from vocflow.baseline import baseline_cell
from vocflow.errors import DataError
from vocflow.leaderboard import select_best, write_leaderboard
from vocflow.predict import predict_probs


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_baseline_cell(tiny_data: dict, task: str, tmp_path: Path) -> None:
    baseline_cell(tiny_data["train"], tiny_data["folds"], 1, task, 0, tmp_path / "m.csv",
                  tmp_path / "oof.npz")
    row = pd.read_csv(tmp_path / "m.csv").iloc[0]
    assert row["model"] == "random" and row["is_best"] == 1 and row["fold"] == 1


def test_select_and_predict(tiny_data: dict, tmp_path: Path) -> None:
    task = "segmentation"
    cells = {"unet/ce_dice": {"checkpoints": [], "oof": []}}
    metrics = []
    for fold in (0, 1):
        paths = train_tiny(tiny_data, task, tmp_path / f"fold{fold}", fold, loss="ce_dice",
                           epochs=2)
        cells["unet/ce_dice"]["checkpoints"].append(str(paths["checkpoint"]))
        cells["unet/ce_dice"]["oof"].append(str(paths["oof"]))
        metrics.append(paths["metrics"])
        baseline_cell(tiny_data["train"], tiny_data["folds"], fold, task, 0,
                      tmp_path / f"r{fold}.csv", tmp_path / f"r{fold}.npz")
        metrics.append(tmp_path / f"r{fold}.csv")
    write_leaderboard(metrics, {task: "kaggle"}, tmp_path / "board.csv")
    board = pd.read_csv(tmp_path / "board.csv")
    assert set(board["model"]) == {"unet", "random"} and (board["folds"] == 2).all()
    selected = select_best(board, task, cells)
    assert selected.model == "unet" and len(selected.checkpoints) == 2
    selected.write(tmp_path / "sel.yaml")
    assert Selection.read(tmp_path / "sel.yaml") == selected
    predict_probs(tiny_data["test"], tmp_path / "sel.yaml", tmp_path / "pred.npz", tta=True)
    probs = np.load(tmp_path / "pred.npz")
    assert probs["probs"].shape == (8, 21, 32, 32) and probs["probs"].dtype == np.uint8
    Path(selected.checkpoints[1]).unlink()
    with pytest.raises(DataError, match="segmentation/unet/ce_dice has no checkpoint"):
        predict_probs(tiny_data["test"], tmp_path / "sel.yaml", tmp_path / "pred2.npz")
