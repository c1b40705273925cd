"""Everything the sections read, loaded lazily once: a section that is not reached costs nothing."""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vocflow.artifacts import BASELINE_MODEL, LEADERBOARD_TEXT, Selection
from vocflow.data.cache import Cache, load_cache
from vocflow.report.figures import Fig, read_histories, to_png
from vocflow.report.sources import ReportOptions, ReportPaths, existing, read_csv, read_yaml
from vocflow.report.stats import (
    OofEval,
    classification_oof,
    read_benchmarks,
    runtime_by_stage,
    segmentation_oof,
)

log = logging.getLogger(__name__)


def class_thresholds(data: Any, class_names: list[str]) -> dict[str, float] | None:
    """Per-class thresholds from a thresholds.yaml: a list in class order, a class -> value
    mapping, or either under a ``thresholds`` key. None when the layout is not one of these."""
    if isinstance(data, dict) and "thresholds" in data:
        data = data["thresholds"]
    if isinstance(data, list) and len(data) == len(class_names):
        return {name: float(v) for name, v in zip(class_names, data, strict=True)}
    if isinstance(data, dict) and data and all(isinstance(v, int | float) for v in data.values()):
        return {str(k): float(v) for k, v in data.items()}
    return None


class ReportContext:
    def __init__(self, paths: ReportPaths, options: ReportOptions,
                 config: dict[str, Any] | None = None) -> None:
        self.paths, self.options, self.config = paths, options, config or {}

    def png(self, fig: Fig) -> bytes:
        return to_png(fig, dpi=self.options.dpi)

    @cached_property
    def board(self) -> pd.DataFrame | None:
        return read_csv(self.paths.leaderboard, dtype=LEADERBOARD_TEXT)

    @cached_property
    def tasks(self) -> list[str]:
        found = set(self.selections)
        if self.board is not None:
            found |= set(self.board["task"])
        return sorted(found)

    @cached_property
    def history(self) -> pd.DataFrame:
        return read_histories(self.paths.metrics)

    @cached_property
    def train(self) -> Cache | None:
        return load_cache(self.paths.train_cache) if existing(self.paths.train_cache) else None

    @cached_property
    def test(self) -> Cache | None:
        return load_cache(self.paths.test_cache) if existing(self.paths.test_cache) else None

    @cached_property
    def selections(self) -> dict[str, Selection]:
        return {task: Selection.read(found) for task, p in self.paths.selections.items()
                if (found := existing(p)) is not None}

    def metric(self, task: str) -> str:
        """The selection metric of ``task`` (leaderboard, else selection, else first val_)."""
        if self.board is not None and task in set(self.board["task"]):
            return str(self.board.loc[self.board["task"] == task, "selection_metric"].iloc[0])
        if task in self.selections:
            return self.selections[task].metric
        cols = [c for c in self.history.columns if c.startswith("val_") and c != "val_loss"]
        return cols[0][4:] if cols else "loss"

    def thresholds(self, task: str) -> dict[str, float] | None:
        data = read_yaml(self.paths.thresholds.get(task))
        names = self.train.class_names if self.train is not None else []
        return class_thresholds(data, names) if data is not None else None

    @cached_property
    def evals(self) -> dict[str, OofEval]:
        """OOF scores of each task's selected cell (needs the training cache)."""
        out: dict[str, OofEval] = {}
        if self.train is None:
            return out
        for task, sel in self.selections.items():
            if sel.model == BASELINE_MODEL or not sel.oof:
                continue
            if task == "classification":
                out[task] = classification_oof(self.train, sel.oof)
                tuned = self.thresholds(task)
                if tuned:
                    cut = np.array([tuned.get(c, 0.5) for c in self.train.class_names])
                    out[task].per_class["f1_tuned"] = classification_oof(
                        self.train, sel.oof, cut).per_class["f1"]
            else:
                out[task] = segmentation_oof(self.train, sel.oof)
        return out

    @cached_property
    def stages(self) -> pd.DataFrame | None:
        folder = existing(self.paths.benchmarks)
        if folder is None or not any(Path(folder).rglob("*.tsv")):
            return None
        return runtime_by_stage(read_benchmarks(folder), self.options.gpu_stages)
