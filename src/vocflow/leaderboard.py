"""Leaderboard over the grid and the best cell per task.

Each fold contributes the validation scores of its best epoch (``is_best`` in metrics.csv); the
leaderboard reports mean ± std over folds per task × model × loss. In a partial grid
(``--config partial=true``) the cells with a failed fold are listed as failed rows and are never
selected.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vocflow.artifacts import (
    BASELINE_MODEL,
    CELL_DONE,
    CELL_FAILED,
    LEADERBOARD_TEXT,
    Selection,
    failed_rows,
    read_csv,
)
from vocflow.atomic import symlink, write_csv
from vocflow.errors import DataError
from vocflow.evaluation import TASK_METRICS

log = logging.getLogger(__name__)
CELL = ["task", "model", "loss"]
MISSING_KEYS = ("task", "model", "loss", "fold", "log")


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


def missing_folds(missing: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The cell folds without results, one row each (task, model, loss, fold, log), in cell
    and fold order."""
    rows = [dict(m) for m in missing]
    for row in rows:
        if lacking := [k for k in MISSING_KEYS if k not in row]:
            raise DataError(f"missing cell fold {row} has no {lacking}; the leaderboard rule's "
                            "'missing' param needs task, model, loss, fold and log per fold")
    frame = pd.DataFrame(rows, columns=list(MISSING_KEYS)).astype({"fold": int})
    return (frame.drop_duplicates([*CELL, "fold"])
            .sort_values([*CELL, "fold"], kind="stable").reset_index(drop=True))


def leaderboard(paths: Iterable[str | Path], monitors: Mapping[str, str],
                missing: Iterable[Mapping[str, Any]] = ()) -> pd.DataFrame:
    """Mean and std over folds of every task metric; ranked per task by its monitored metric.

    ``missing``: the cell folds of a partial grid that have no results (task, model, loss,
    fold and the fold's training log). Their cells become ``status`` "failed" rows, ranked
    after the task's "done" rows, with no scores: ``folds`` counts the folds that finished,
    ``failed_folds`` lists the others ("1,2") and ``log`` is the first failed fold's log. A
    cell missing even one fold fails as a whole: a mean over fewer folds is not comparable.
    """
    paths, gaps = list(paths), missing_folds(missing)
    best = best_epochs(paths) if paths or gaps.empty else pd.DataFrame(columns=[*CELL, "fold"])
    tasks = set(best["task"]) | set(gaps["task"])
    metrics = sorted({m for task in tasks for m in TASK_METRICS[task]})
    failed = _cell_keys(best).isin(set(_cell_keys(gaps)))
    parts = [_scores(best[~failed], metrics) if (~failed).any() else None,
             _failed_rows(gaps, best[failed]) if len(gaps) else None]
    scores = [f"{m}_{fn}" for m in metrics for fn in ("mean", "std")]
    board = pd.concat([p for p in parts if p is not None], ignore_index=True).reindex(
        columns=[*CELL, "folds", *scores, "status", "failed_folds", "log"])
    board["selection_metric"] = board["task"].map(lambda t: monitors.get(t) or TASK_METRICS[t][0])
    for stat in ("mean", "std"):
        board[f"score_{stat}"] = [board.at[i, f"{m}_{stat}"]
                                  for i, m in board["selection_metric"].items()]
    board["_failed"] = failed_rows(board)
    board = board.sort_values(["task", "_failed", "score_mean", "score_std"],
                              ascending=[True, True, False, True], na_position="last",
                              kind="stable")
    board["rank"] = board.groupby("task").cumcount() + 1
    columns = [*CELL, "folds", *scores, "selection_metric", "score_mean", "score_std", "rank",
               "status", "failed_folds", "log"]
    return board.reindex(columns=columns).reset_index(drop=True)


def _cell_keys(frame: pd.DataFrame) -> pd.Series:
    return (frame["task"].astype(str) + "/" + frame["model"].astype(str) + "/"
            + frame["loss"].astype(str))


def _scores(best: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One done row per cell: the folds and the mean and std over folds of each metric (those
    of a task whose every cell failed are absent from ``best``)."""
    found = [m for m in metrics if f"val_{m}" in best]
    agg = best.groupby(CELL, sort=False).agg(
        folds=("fold", "nunique"),
        **{f"{m}_{fn}": (f"val_{m}", fn) for m in found for fn in ("mean", "std")})
    return agg.reset_index().assign(status=CELL_DONE)


def _failed_rows(gaps: pd.DataFrame, finished: pd.DataFrame) -> pd.DataFrame:
    """One failed row per cell of ``gaps``; ``finished``: the best epochs of those cells' folds
    that did finish."""
    rows = []
    for (task, model, loss), folds in gaps.groupby(CELL, sort=False):
        done = finished[(finished["task"] == task) & (finished["model"] == model)
                        & (finished["loss"] == loss) & ~finished["fold"].isin(folds["fold"])]
        rows.append({"task": task, "model": model, "loss": loss,
                     "folds": int(done["fold"].nunique()), "status": CELL_FAILED,
                     "failed_folds": ",".join(str(k) for k in folds["fold"]),
                     "log": str(folds["log"].iloc[0])})
    return pd.DataFrame(rows)


def read_leaderboard(path: str | Path) -> pd.DataFrame:
    """leaderboard.csv as written (a single failed fold "1" stays text, not a number)."""
    return read_csv(path, dtype=LEADERBOARD_TEXT)


def write_leaderboard(paths: Iterable[str | Path], monitors: Mapping[str, str],
                      out: str | Path, missing: Iterable[Mapping[str, Any]] = ()) -> None:
    board = leaderboard(paths, monitors, missing)
    write_csv(out, board)
    failed = board[failed_rows(board)]
    log.info("leaderboard of %d cells written to %s", len(board), out)
    if len(failed):
        log.warning("partial grid: %d cells failed and are listed as failed rows: %s",
                    len(failed), failed_cells_text(failed))


def failed_cells_text(failed: pd.DataFrame) -> str:
    """``model/loss (folds 1,2; log path)`` of each failed row, comma-separated, one line."""
    def folds(value: Any) -> str:
        text = str(value)
        return f"fold {text}" if "," not in text else f"folds {text}"
    return ", ".join(f"{r.task}/{r.model}/{r.loss} ({folds(r.failed_folds)}; log {r.log})"
                     for r in failed.itertuples(index=False))


def select_best(board: pd.DataFrame, task: str, cells: Mapping[str, Mapping[str, list[str]]],
                partial: bool = False) -> Selection:
    """The top trained cell of ``task`` (the random baseline and failed cells are never
    selected).

    ``cells`` maps ``"model/loss"`` to that cell's ``checkpoints`` and ``oof`` paths. A board
    with failed rows for ``task`` is refused unless ``partial``; the selection then records
    them.
    """
    rows = board[board["task"] == task]
    failed = failed_rows(rows)
    if failed.any() and not partial:
        raise DataError(f"grid incomplete: {int(failed.sum())} {task} cells failed: "
                        f"{failed_cells_text(rows[failed])}; re-run the workflow to retry "
                        "them, or pass --config partial=true to select from the finished cells")
    trained = rows[(rows["model"] != BASELINE_MODEL) & ~failed].dropna(subset=["score_mean"])
    if trained.empty:
        lost = rows[failed & (rows["model"] != BASELINE_MODEL)]
        if len(lost):
            raise DataError(f"every trained {task} cell failed: {failed_cells_text(lost)}; "
                            "read those logs, fix the cause and re-run the workflow")
        raise DataError(f"the leaderboard has no trained {task} cell; add models to "
                        f"'{task}.models' in config/config.yaml")
    top = trained.iloc[0]
    key = f"{top['model']}/{top['loss']}"
    if key not in cells:
        raise DataError(f"selected {task} cell {key} has no checkpoints listed; re-run the grid")
    row = {k: (None if isinstance(v, float) and np.isnan(v) else _plain(v))
           for k, v in top.items()}
    return Selection(task=task, model=str(top["model"]), loss=str(top["loss"]),
                     metric=str(top["selection_metric"]), mean=float(top["score_mean"]),
                     std=float(top["score_std"]) if pd.notna(top["score_std"]) else 0.0,
                     checkpoints=list(cells[key]["checkpoints"]), oof=list(cells[key]["oof"]),
                     leaderboard_row=row, partial=bool(failed.any()),
                     failed_cells=[f"{r.model}/{r.loss}"
                                   for r in rows[failed].itertuples(index=False)])


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def write_selection(leaderboard_csv: str | Path, task: str,
                    cells: Mapping[str, Mapping[str, list[str]]], out: str | Path,
                    partial: bool = False,
                    links: Mapping[str, Sequence[str | Path]] | None = None) -> None:
    """Select ``task``'s best cell into ``out`` (selected.yaml).

    ``links`` maps a kind of fold file of ``cells`` (checkpoints, oof, metrics) to one link path
    per fold: each is pointed at the selected cell's file, and selected.yaml lists the links.
    Later rules then read fixed paths, so the workflow's DAG is known before selection.
    """
    selected = select_best(read_leaderboard(leaderboard_csv), task, cells, partial)
    chosen = cells[f"{selected.model}/{selected.loss}"]
    for kind, paths in (links or {}).items():
        if len(paths) != len(chosen[kind]):
            raise DataError(f"selection of {task}: {len(paths)} {kind} links for "
                            f"{len(chosen[kind])} folds; re-run with the same config")
        for target, link in zip(chosen[kind], paths, strict=True):
            symlink(target, link)
        if kind in ("checkpoints", "oof"):
            selected = replace(selected, **{kind: [str(p) for p in paths]})
    selected.write(out)
    log.info("selected %s: %s %.4f ± %.4f", selected.cell, selected.metric, selected.mean,
             selected.std)
    if selected.partial:
        log.warning("selected %s from a partial grid: %d %s cells failed (%s)", selected.cell,
                    len(selected.failed_cells), task, ", ".join(selected.failed_cells))
