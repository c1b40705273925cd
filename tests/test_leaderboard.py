"""The random baseline, the leaderboard over folds, the selection, and prediction with the
selected cell through the workflow's path (no Snakemake); partial grids: failed cells as failed
rows, never selected, and noted in selected.yaml, the submission's log and score.yaml."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import train_tiny

from vocflow.artifacts import Selection, write_metrics
from vocflow.atomic import save_npz
from vocflow.baseline import baseline_cell
from vocflow.data.cache import load_cache
from vocflow.errors import DataError
from vocflow.leaderboard import (
    leaderboard,
    read_leaderboard,
    select_best,
    write_leaderboard,
    write_selection,
)
from vocflow.predict import predict_probs
from vocflow.submission import build_submission, score_against_cache


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


# ----------------------------------------------------------------------------- partial grids

MONITORS = {"segmentation": "kaggle", "classification": "map"}


def hand_metrics(folder: Path, task: str, model: str, loss: str, fold: int, score: float) -> Path:
    """A one-epoch metrics.csv whose every validation metric of ``task`` is ``score``."""
    metrics = {"segmentation": ("miou", "dice", "kaggle"),
               "classification": ("map", "f1", "kaggle", "auc")}[task]
    path = folder / task / model / loss / f"fold{fold}" / "metrics.csv"
    write_metrics(path, [{"epoch": 1, **{f"val_{m}": score for m in metrics}}],
                  {"task": task, "model": model, "loss": loss}, fold, metrics[0])
    return path


def gap(model: str, fold: int, task: str = "segmentation") -> dict:
    return {"task": task, "model": model, "loss": "ce", "fold": fold,
            "log": f"results/logs/train/{task}/{model}/ce/fold{fold}.log"}


@pytest.fixture
def partial_grid(tmp_path: Path) -> dict:
    """segmentation: unet/ce done (0.5, 0.7), fcn/ce fold 0 done at 0.9 but fold 1 failed,
    deeplab/ce both folds failed, the baseline at 0.1; classification: cnn/ce done (0.8, 0.6)."""
    paths = [hand_metrics(tmp_path, "segmentation", "unet", "ce", k, s)
             for k, s in ((0, 0.5), (1, 0.7))]
    paths += [hand_metrics(tmp_path, "segmentation", "random", "prior", k, 0.1) for k in (0, 1)]
    paths.append(hand_metrics(tmp_path, "segmentation", "fcn", "ce", 0, 0.9))
    paths += [hand_metrics(tmp_path, "classification", "cnn", "ce", k, s)
              for k, s in ((0, 0.8), (1, 0.6))]
    missing = [gap("fcn", 1), gap("deeplab", 1), gap("deeplab", 0), gap("deeplab", 0)]
    write_leaderboard(paths, MONITORS, tmp_path / "board.csv", missing)
    cells = {f"{m}/ce": {"checkpoints": [f"{m}/fold{k}/best.pt" for k in (0, 1)],
                         "oof": [f"{m}/fold{k}/oof.npz" for k in (0, 1)]}
             for m in ("unet", "fcn", "deeplab", "cnn")}
    return {"board": tmp_path / "board.csv", "paths": paths, "cells": cells, "dir": tmp_path}


def test_failed_cells_are_failed_rows_after_the_done_ones(partial_grid: dict) -> None:
    board = read_leaderboard(partial_grid["board"])
    seg = board[board["task"] == "segmentation"].set_index("model")
    assert list(seg.index) == ["unet", "random", "deeplab", "fcn"]
    assert list(seg["rank"]) == [1, 2, 3, 4]
    assert list(seg["status"]) == ["done", "done", "failed", "failed"]
    # fcn's finished fold (0.9) would lead: a cell missing a fold fails as a whole
    assert seg.at["fcn", "folds"] == 1 and seg.at["deeplab", "folds"] == 0
    assert seg.at["fcn", "failed_folds"] == "1" and seg.at["deeplab", "failed_folds"] == "0,1"
    assert seg.at["deeplab", "log"] == "results/logs/train/segmentation/deeplab/ce/fold0.log"
    assert seg.loc[["fcn", "deeplab"], ["score_mean", "kaggle_mean", "miou_std"]].isna().all(
        axis=None)
    assert seg.at["unet", "score_mean"] == pytest.approx(0.6)
    assert seg.at["unet", "score_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    cls = board[board["task"] == "classification"]
    assert list(cls["status"]) == ["done"] and cls["failed_folds"].isna().all()


def test_a_complete_grid_keeps_its_columns_and_marks_every_row_done(partial_grid: dict) -> None:
    board = leaderboard(partial_grid["paths"][:4], MONITORS)
    assert list(board.columns) == [
        "task", "model", "loss", "folds", "dice_mean", "dice_std", "kaggle_mean", "kaggle_std",
        "miou_mean", "miou_std", "selection_metric", "score_mean", "score_std", "rank",
        "status", "failed_folds", "log"]
    assert list(board["model"]) == ["unet", "random"] and (board["status"] == "done").all()


def test_a_normal_run_refuses_to_select_from_an_incomplete_grid(partial_grid: dict) -> None:
    with pytest.raises(DataError) as err:
        write_selection(partial_grid["board"], "segmentation", partial_grid["cells"],
                        partial_grid["dir"] / "sel.yaml")
    assert str(err.value) == (
        "grid incomplete: 2 segmentation cells failed: segmentation/deeplab/ce (folds 0,1; log "
        "results/logs/train/segmentation/deeplab/ce/fold0.log), segmentation/fcn/ce (fold 1; "
        "log results/logs/train/segmentation/fcn/ce/fold1.log); re-run the workflow to retry "
        "them, or pass --config partial=true to select from the finished cells")
    assert not (partial_grid["dir"] / "sel.yaml").exists()


def test_partial_selection_skips_failed_cells_and_says_so(partial_grid: dict,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    out = partial_grid["dir"] / "sel.yaml"
    write_selection(partial_grid["board"], "segmentation", partial_grid["cells"], out,
                    partial=True)
    sel = Selection.read(out)
    assert (sel.model, sel.partial, sel.failed_cells) == ("unet", True, ["deeplab/ce", "fcn/ce"])
    assert sel.checkpoints == ["unet/fold0/best.pt", "unet/fold1/best.pt"]
    assert yaml.safe_load(out.read_text())["partial"] is True
    assert "selected segmentation/unet/ce from a partial grid: 2 segmentation cells failed " \
           "(deeplab/ce, fcn/ce)" in caplog.text
    # the other task is complete: partial mode changes nothing there
    write_selection(partial_grid["board"], "classification", partial_grid["cells"], out,
                    partial=True)
    assert (Selection.read(out).partial, Selection.read(out).failed_cells) == (False, [])


def test_a_task_whose_every_cell_failed_names_them_and_their_logs(tmp_path: Path) -> None:
    paths = [hand_metrics(tmp_path, "segmentation", "random", "prior", k, 0.1) for k in (0, 1)]
    board = leaderboard(paths, MONITORS, [gap("unet", 0), gap("unet", 1)])
    assert list(board["status"]) == ["done", "failed"]
    with pytest.raises(DataError, match=r"^every trained segmentation cell failed: "
                       r"segmentation/unet/ce \(folds 0,1; log results/logs/train/segmentation/"
                       r"unet/ce/fold0.log\); read those logs"):
        select_best(board, "segmentation", {"unet/ce": {"checkpoints": [], "oof": []}},
                    partial=True)
    # a task whose every cell failed, the baseline too, beside a finished one
    mixed = leaderboard(paths, MONITORS, [gap("cnn", 0, "classification")])
    assert list(mixed["task"]) == ["classification", "segmentation"]
    assert list(mixed["status"]) == ["failed", "done"] and mixed["map_mean"].isna().all()
    # nothing finished at all, not even the baseline: still a board of failed rows
    only_failed = leaderboard([], MONITORS, [gap("unet", 0)])
    assert list(only_failed["status"]) == ["failed"] and only_failed.at[0, "folds"] == 0


def test_selection_reads_files_with_and_without_the_partial_keys(tmp_path: Path) -> None:
    full = Selection(task="segmentation", model="unet", loss="ce", metric="kaggle", mean=0.6,
                     std=0.1, checkpoints=["a.pt"], oof=["a.npz"], partial=True,
                     failed_cells=["fcn/ce"])
    full.write(tmp_path / "new.yaml")
    assert Selection.read(tmp_path / "new.yaml") == full
    old = {"task": "segmentation", "model": "unet", "loss": "ce", "metric": "kaggle",
           "mean": 0.6, "std": 0.1, "checkpoints": ["a.pt"], "oof": ["a.npz"],
           "leaderboard_row": {}}
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old))
    read = Selection.read(tmp_path / "old.yaml")
    assert (read.partial, read.failed_cells, read.model) == (False, [], "unet")


def test_submission_of_a_partial_grid_warns_and_its_score_says_so(
        tiny_data: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = load_cache(tiny_data["test"])
    masks = [cache.original_mask(i) for i in range(len(cache))]
    ids = np.asarray(cache.ids)
    save_npz(tmp_path / "cls.npz", ids=ids, labels=cache.labels)
    save_npz(tmp_path / "seg.npz", ids=ids, masks=np.concatenate([m.ravel() for m in masks]),
             heights=cache.heights, widths=cache.widths)
    sels = []
    for task, failed in (("classification", []), ("segmentation", ["fcn/ce"])):
        Selection(task=task, model="m", loss="ce", metric="kaggle", mean=0.5, std=0.0,
                  checkpoints=[], oof=[], partial=bool(failed), failed_cells=failed
                  ).write(tmp_path / f"{task}.yaml")
        sels.append(tmp_path / f"{task}.yaml")
    build_submission(tiny_data["test"], tmp_path / "cls.npz", tmp_path / "seg.npz",
                     tmp_path / "plain.csv", selections=sels[:1])
    assert "partial grid" not in caplog.text
    build_submission(tiny_data["test"], tmp_path / "cls.npz", tmp_path / "seg.npz",
                     tmp_path / "sub.csv", selections=sels)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == ["submission from a partial grid: 1 cells failed (segmentation/fcn/ce); "
                      "the selected cells are the best of those that finished"]
    # the Kaggle file itself is unchanged: same bytes as without the note
    assert (tmp_path / "sub.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()
    assert (tmp_path / "sub.csv").read_text().splitlines()[0] == "Id,Predicted"
    subs = {"ours": tmp_path / "sub.csv"}
    score_against_cache(subs, tiny_data["test"], tmp_path / "plain.yaml")
    score_against_cache(subs, tiny_data["test"], tmp_path / "score.yaml", selections=sels)
    plain = yaml.safe_load((tmp_path / "plain.yaml").read_text())
    marked = yaml.safe_load((tmp_path / "score.yaml").read_text())
    assert set(plain) == {"ours"} and plain["ours"]["score"] == pytest.approx(1.0)
    assert marked == {**plain, "partial": True, "failed_cells": ["segmentation/fcn/ce"]}
