"""The study's conventions and the files its stages hand to each other.

One home for what several stages must agree on: the task names, the void label, how
probabilities are stored, and the readers and writers of the files one rule writes and later
rules read — per-cell ``metrics.csv`` and ``oof.npz``, the selection ``selected.yaml``, and the
test prediction files. torch-free, so light aggregation jobs start fast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from vocflow.atomic import save_npz, write_csv, write_yaml
from vocflow.errors import READ_ERRORS, DataError, reading, rebuild

TASKS = ("classification", "segmentation")
VOID = 255  # mask label of unlabelled pixels: ignored by losses, metrics and thresholds
BACKGROUND = "background"  # segmentation label 0; object classes are 1..C
# Segmentation probabilities are stored as uint8, p ≈ q / PROB_SCALE (4x smaller than float32,
# and the threshold search histograms the 256 values); classification ones as float32 (scale 1).
PROB_SCALE = 255
# The class-frequency baseline, always on the leaderboard: results/{task}/random/prior/fold{k}/.
BASELINE_MODEL = "random"
BASELINE_LOSS = "prior"
# leaderboard.csv ``status`` of a cell: results in every fold, or a fold without results (a
# partial grid lists such cells as rows without scores; they are never selected).
CELL_DONE, CELL_FAILED = "done", "failed"
# leaderboard.csv columns that hold text even where it looks like a number ("1": one failed fold).
LEADERBOARD_TEXT = {"failed_folds": str, "log": str}


def num_outputs(task: str, num_classes: int) -> int:
    """Model outputs: C labels (classification) or background + C classes (segmentation)."""
    return num_classes if task == "classification" else num_classes + 1


def class_names_for(task: str, class_names: Sequence[str]) -> list[str]:
    """Names of a task's outputs: the C object classes, or background + C for segmentation."""
    return list(class_names) if task == "classification" else [BACKGROUND, *class_names]


def dequantize(probs: np.ndarray, scale: float) -> np.ndarray:
    """Stored probabilities -> float32 (p = q / scale); the one conversion every path uses."""
    return (np.asarray(probs).astype(np.float32) / np.float32(scale)).astype(np.float32)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an .npz written by a rule (no pickles)."""
    with reading(path, ".npz archive", rebuild(path)), np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file written by a rule; an unreadable file names the command that
    re-creates it."""
    with reading(path, "YAML file", rebuild(path), (*READ_ERRORS, yaml.YAMLError)):
        data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        found = "the file is empty" if data is None else f"it holds a {type(data).__name__}"
        raise DataError(f"cannot read {path}: {found}, not a YAML mapping; {rebuild(path)}")
    return data


def read_csv(path: str | Path, **options: Any) -> pd.DataFrame:
    """A csv written by a rule (pandas.read_csv ``options``), guarded like read_yaml."""
    with reading(path, "csv", rebuild(path)):
        return pd.read_csv(path, **options)


def failed_rows(board: pd.DataFrame) -> pd.Series:
    """Which leaderboard rows are failed cells (none on a board written before ``status``)."""
    if "status" not in board:
        return pd.Series(False, index=board.index)
    return board["status"] == CELL_FAILED


# --------------------------------------------------------------------------- metrics.csv


def write_metrics(path: str | Path, rows: Sequence[Mapping[str, Any]], cell: Mapping[str, str],
                  fold: int, metric: str) -> None:
    """One cell's per-epoch rows, led by its ``task, model, loss, fold``; ``is_best`` marks the
    row of the kept checkpoint (the highest ``val_{metric}``; the last row of a refit, which
    has no validation fold and fold -1)."""
    frame = pd.DataFrame(list(rows))
    column = f"val_{metric}"
    has_val = column in frame and frame[column].notna().any()
    frame["is_best"] = (frame.index == (frame[column].idxmax() if has_val
                                        else frame.index[-1])).astype(int)
    frame.insert(0, "fold", fold)
    for i, key in enumerate(("task", "model", "loss")):
        frame.insert(i, key, cell[key])
    write_csv(path, frame)


# --------------------------------------------------------------------------- oof.npz


def write_oof(path: str | Path, ids: Sequence[str], index: np.ndarray, probs: np.ndarray) -> None:
    """Out-of-fold probabilities of one fold: ids, train-cache rows, probs and their scale
    (uint8 probs are quantised with PROB_SCALE; float ones are stored as they are)."""
    scale = PROB_SCALE if probs.dtype == np.uint8 else 1
    save_npz(path, ids=np.asarray(ids), index=np.asarray(index), probs=probs,
             scale=np.asarray(scale))


def read_oof(path: str | Path) -> dict[str, np.ndarray]:
    """One oof.npz: ids, index, probs, scale."""
    if not Path(path).is_file():
        raise DataError(f"OOF file {path} is missing; re-run its training cell (snakemake "
                        "--forcerun on that file)")
    return load_npz(path)


# --------------------------------------------------------------------------- selected.yaml


@dataclass(frozen=True)
class Selection:
    """The best cell of a task (``results/{task}/selected.yaml``): its name, its score, and the
    checkpoint and OOF file of every fold, in fold order.

    ``partial``: chosen from a grid in which the cells ``failed_cells`` (``model/loss``) have no
    results (``--config partial=true``); files written before these keys existed read as a
    complete grid.
    """

    task: str
    model: str
    loss: str
    metric: str
    mean: float
    std: float
    checkpoints: list[str]
    oof: list[str]
    leaderboard_row: dict[str, Any] = field(default_factory=dict)
    partial: bool = False
    failed_cells: list[str] = field(default_factory=list)

    @property
    def cell(self) -> str:
        return f"{self.task}/{self.model}/{self.loss}"

    def write(self, path: str | Path) -> None:
        write_yaml(path, asdict(self))

    @classmethod
    def read(cls, path: str | Path) -> Selection:
        data = read_yaml(path)
        with reading(path, "selection", rebuild(path), (TypeError,)):  # missing/unknown keys
            return cls(**data)

    def require_checkpoints(self) -> list[str]:
        """The fold checkpoints, each checked to exist."""
        missing = [p for p in self.checkpoints if not Path(p).is_file()]
        if missing:
            raise DataError(f"selected cell {self.cell} has no checkpoint {missing[0]}; re-run "
                            "its training (snakemake --forcerun on that file)")
        return list(self.checkpoints)

    def load_oof(self) -> dict[str, Any]:
        """Every fold's OOF file of this cell, concatenated in fold order.

        ids, fold (position in ``oof``), index (train-cache rows), probs, scale.
        """
        if not self.oof:
            raise DataError(f"selected cell {self.cell} lists no OOF files; re-run the select "
                            "rule")
        missing = [p for p in self.oof if not Path(p).is_file()]
        if missing:
            raise DataError(f"selected cell {self.cell} has no OOF file {missing[0]}; re-run its "
                            "training (snakemake --forcerun on that file)")
        parts = [read_oof(p) for p in self.oof]
        scales = {float(p["scale"]) for p in parts}
        if len(scales) != 1:
            raise DataError(f"OOF files of {self.cell} disagree on their scale {sorted(scales)}; "
                            "re-run its training")
        return {"ids": np.concatenate([p["ids"] for p in parts]),
                "fold": np.concatenate([np.full(len(p["ids"]), k) for k, p in enumerate(parts)]),
                "index": np.concatenate([p["index"] for p in parts]).astype(np.int64),
                "probs": np.concatenate([p["probs"] for p in parts]), "scale": scales.pop()}


# --------------------------------------------------------------------------- test predictions


def read_masks(npz: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Split the flat ``masks`` of a segmentation prediction file into (H, W) masks."""
    sizes = npz["heights"].astype(np.int64) * npz["widths"].astype(np.int64)
    parts = np.split(npz["masks"], np.cumsum(sizes)[:-1])
    return [p.reshape(int(h), int(w)) for p, h, w in zip(parts, npz["heights"], npz["widths"],
                                                         strict=True)]
