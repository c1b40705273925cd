"""Leaderboard over the grid and the best cell per task.

Each fold contributes the validation scores of its best epoch (``is_best`` in metrics.csv); the
leaderboard reports mean ± std over folds per task × model × loss.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vocflow.artifacts import BASELINE_MODEL, Selection, read_csv
from vocflow.atomic import write_csv
from vocflow.errors import DataError
from vocflow.evaluation import TASK_METRICS

log = logging.getLogger(__name__)
CELL = ["task", "model", "loss"]


def best_epochs(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per (task, model, loss, fold): the epoch whose checkpoint was kept."""
    frames = []
    for path in paths:
        frame = read_csv(path)
        if "is_best" not in frame or frame["is_best"].sum() != 1:
            raise DataError(f"{path} has no single is_best row; re-run that training cell")
        frames.append(frame[frame["is_best"] == 1])
    if not frames:
        raise DataError("no metrics.csv files given: the grid in config/config.yaml is empty")
    return pd.concat(frames, ignore_index=True)


def refit_epochs(paths: Iterable[str | Path]) -> int:
    """The epoch count cross-validation chose for a refit: the mean best epoch over the folds'
    metrics.csv files, rounded, at least 1."""
    return max(1, int(round(float(best_epochs(paths)["epoch"].mean()))))


def leaderboard(paths: Iterable[str | Path], monitors: Mapping[str, str]) -> pd.DataFrame:
    """Mean and std over folds of every task metric; ranked per task by its monitored metric."""
    best = best_epochs(paths)
    metrics = sorted({m for task in best["task"].unique() for m in TASK_METRICS[task]})
    agg = best.groupby(CELL, sort=False).agg(
        folds=("fold", "nunique"),
        **{f"{m}_{fn}": (f"val_{m}", fn) for m in metrics for fn in ("mean", "std")})
    board = agg.reset_index()
    board["selection_metric"] = board["task"].map(lambda t: monitors.get(t) or TASK_METRICS[t][0])
    for stat in ("mean", "std"):
        board[f"score_{stat}"] = [board.at[i, f"{m}_{stat}"]
                                  for i, m in board["selection_metric"].items()]
    board = board.sort_values(["task", "score_mean", "score_std"], ascending=[True, False, True],
                              na_position="last", kind="stable")
    board["rank"] = board.groupby("task").cumcount() + 1
    return board.reset_index(drop=True)


def write_leaderboard(paths: Iterable[str | Path], monitors: Mapping[str, str],
                      out: str | Path) -> None:
    board = leaderboard(paths, monitors)
    write_csv(out, board)
    log.info("leaderboard of %d cells written to %s", len(board), out)


def select_best(board: pd.DataFrame, task: str, cells: Mapping[str, Mapping[str, list[str]]],
                ) -> Selection:
    """The top trained cell of ``task`` (the random baseline is never selected).

    ``cells`` maps ``"model/loss"`` to that cell's ``checkpoints`` and ``oof`` paths.
    """
    rows = board[(board["task"] == task) & (board["model"] != BASELINE_MODEL)]
    rows = rows.dropna(subset=["score_mean"])
    if rows.empty:
        raise DataError(f"the leaderboard has no trained {task} cell; add models to "
                        f"'{task}.models' in config/config.yaml")
    top = rows.iloc[0]
    key = f"{top['model']}/{top['loss']}"
    if key not in cells:
        raise DataError(f"selected {task} cell {key} has no checkpoints listed; re-run the grid")
    row = {k: (None if isinstance(v, float) and np.isnan(v) else _plain(v))
           for k, v in top.items()}
    return Selection(task=task, model=str(top["model"]), loss=str(top["loss"]),
                     metric=str(top["selection_metric"]), mean=float(top["score_mean"]),
                     std=float(top["score_std"]) if pd.notna(top["score_std"]) else 0.0,
                     checkpoints=list(cells[key]["checkpoints"]), oof=list(cells[key]["oof"]),
                     leaderboard_row=row)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def write_selection(leaderboard_csv: str | Path, task: str,
                    cells: Mapping[str, Mapping[str, list[str]]], out: str | Path) -> None:
    selected = select_best(pd.read_csv(leaderboard_csv), task, cells)
    selected.write(out)
    log.info("selected %s: %s %.4f ± %.4f", selected.cell, selected.metric, selected.mean,
             selected.std)
