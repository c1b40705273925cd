"""Training, baseline, selection and prediction on the tiny dataset (no Snakemake)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from vocflow.baseline import baseline_cell
from vocflow.config import TrainSettings, cell_settings, check_grid
from vocflow.errors import ConfigError, DataError
from vocflow.predict import load_checkpoint, predict_test, read_masks
from vocflow.select import select_best, write_leaderboard
from vocflow.train import train_cell

SETTINGS = {
    "classification": dict(arch="cnn", loss="bce", model_params={"widths": [8, 16], "dense": 16},
                           epochs=2, batch_size=8, lr=3e-3),
    "segmentation": dict(arch="unet", loss="ce_dice", model_params={"base_width": 4, "levels": 2},
                         epochs=2, batch_size=8, lr=3e-3),
}


def run_cell(tiny_data: dict, task: str, out: Path, fold: int = 0) -> dict[str, Path]:
    paths = {k: out / f"{k}{ext}" for k, ext in
             (("checkpoint", ".pt"), ("metrics", ".csv"), ("oof", ".npz"))}
    settings = TrainSettings(task=task, model=SETTINGS[task]["arch"], **SETTINGS[task]).to_dict()
    train_cell(tiny_data["train"], tiny_data["folds"], fold, settings,
               paths["checkpoint"], paths["metrics"], paths["oof"])
    return paths


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_train_cell_outputs_and_determinism(tiny_data: dict, task: str, tmp_path: Path) -> None:
    a = run_cell(tiny_data, task, tmp_path / "a")
    b = run_cell(tiny_data, task, tmp_path / "b")
    metrics = pd.read_csv(a["metrics"])
    assert list(metrics["epoch"]) == [1, 2] and metrics["is_best"].sum() == 1
    assert {"train_loss", "val_loss", "task", "model", "loss", "fold"} <= set(metrics.columns)
    pd.testing.assert_frame_equal(metrics.drop(columns="seconds"),
                                  pd.read_csv(b["metrics"]).drop(columns="seconds"))
    oof = np.load(a["oof"])
    assert len(oof["ids"]) == len(oof["probs"]) and np.array_equal(
        oof["probs"], np.load(b["oof"])["probs"])
    model, meta = load_checkpoint(a["checkpoint"], torch.device("cpu"))
    assert meta["task"] == task and meta["image_size"] == 32


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
        paths = run_cell(tiny_data, task, tmp_path / f"fold{fold}", fold)
        cells["unet/ce_dice"]["checkpoints"].append(str(paths["checkpoint"]))
        metrics.append(paths["metrics"])
        baseline_cell(tiny_data["train"], tiny_data["folds"], fold, task, 0,
                      tmp_path / f"r{fold}.csv", tmp_path / f"r{fold}.npz")
        metrics.append(tmp_path / f"r{fold}.csv")
    write_leaderboard(metrics, {task: "kaggle"}, tmp_path / "board.csv")
    board = pd.read_csv(tmp_path / "board.csv")
    assert set(board["model"]) == {"unet", "random"} and (board["folds"] == 2).all()
    selected = select_best(board, task, cells)
    assert selected["model"] == "unet" and len(selected["checkpoints"]) == 2
    (tmp_path / "sel.yaml").write_text(yaml.safe_dump(selected))
    predict_test(tiny_data["test"], tmp_path / "sel.yaml", tmp_path / "pred.npz", tta=True)
    masks = read_masks(np.load(tmp_path / "pred.npz"))
    assert len(masks) == 8 and all(m.max() <= 20 for m in masks)
    Path(selected["checkpoints"][1]).unlink()
    with pytest.raises(DataError, match="segmentation/unet/ce_dice has no checkpoint"):
        predict_test(tiny_data["test"], tmp_path / "sel.yaml", tmp_path / "pred2.npz")


def base_config() -> dict:
    return yaml.safe_load((Path(__file__).parents[1] / "config/config.yaml").read_text())


def test_cell_settings_resolve_variants() -> None:
    config = base_config()
    config["variants"]["unet_wide"] = {"arch": "unet", "base_width": 32, "lr": 3e-4}
    s = cell_settings(config, "segmentation", "unet_wide", "ce_dice")
    assert s["arch"] == "unet" and s["model_params"] == {"base_width": 32} and s["lr"] == 3e-4
    assert s["loss_params"] == {"alpha": 0.5}
    assert cell_settings(config, "classification", "cnn", "bce")["monitor"] == "map"


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["classification"]["models"].append("resnet9000"), "unknown model 'resnet9000'"),
    (lambda c: c["segmentation"]["losses"].append("l2"), "unknown loss 'l2'"),
    (lambda c: c["segmentation"]["models"].append("random"), "reserved for the baseline"),
])
def test_check_grid_errors(edit, message: str) -> None:
    config = base_config()
    edit(config)
    with pytest.raises(ConfigError, match=message):
        check_grid(config)
