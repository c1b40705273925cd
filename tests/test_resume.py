"""Resumable training: an interrupted cell, restarted, ends exactly like an uninterrupted one."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from vocflow.grid import TrainSettings
from vocflow.resume import STATE_FILE, Interrupted, StateStore
from vocflow.train import train_cell

# Dropout (cnn) and the full augmentation preset: the RNG state and the seeded loader both
# have to come back exactly for the results to match.
SETTINGS = {
    "classification": dict(arch="cnn", loss="bce", augment="full",
                           model_params={"widths": [4, 8], "dense": 16, "dropout": 0.3}),
    "segmentation": dict(arch="unet", loss="ce_dice", augment="full", schedule="plateau",
                         model_params={"base_width": 4, "levels": 2, "dropout": 0.2}),
}


class Crash(RuntimeError):
    """Stands for a kill -9 / node failure: nothing runs after it."""


def settings(task: str, **over: Any) -> dict[str, Any]:
    spec = {"epochs": 3, "batch_size": 8, "lr": 3e-3, **SETTINGS[task], **over}
    return TrainSettings(task=task, model=spec["arch"], **spec).to_dict()


def run(tiny_data: dict, out: Path, s: dict[str, Any], callback: Any = None) -> dict[str, Path]:
    paths = {"checkpoint": out / "best.pt", "metrics": out / "metrics.csv",
             "oof": out / "oof.npz"}
    train_cell(tiny_data["train"], tiny_data["folds"], 0, s, paths["checkpoint"],
               paths["metrics"], paths["oof"], state_dir=out / "state", callback=callback)
    return paths


def assert_same_outputs(a: dict[str, Path], b: dict[str, Path]) -> pd.DataFrame:
    ma, mb = (pd.read_csv(p["metrics"]).drop(columns=["seconds", "resumed_from"]) for p in (a, b))
    pd.testing.assert_frame_equal(ma, mb)
    wa, wb = (torch.load(p["checkpoint"], weights_only=True) for p in (a, b))
    assert wa["meta"] == wb["meta"]
    assert all(torch.equal(wa["state_dict"][k], wb["state_dict"][k]) for k in wa["state_dict"])
    assert np.array_equal(np.load(a["oof"])["probs"], np.load(b["oof"])["probs"])
    return pd.read_csv(b["metrics"])


def crash_at(when: tuple[str, int, int]) -> Any:
    def callback(event: str, epoch: int, batch: int, model: Any) -> None:
        if (event, epoch, batch) == when:
            raise Crash(f"killed at {when}")
    return callback


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_crash_after_epoch_one_resumes_to_the_same_result(
        tiny_data: dict, task: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = settings(task)
    whole = run(tiny_data, tmp_path / "whole", s)
    assert not (tmp_path / "whole" / "state").exists()  # deleted after a success
    with pytest.raises(Crash):
        run(tiny_data, tmp_path / "cut", s, crash_at(("epoch_end", 1, 0)))
    assert (tmp_path / "cut" / "state" / STATE_FILE).is_file()
    # metrics.csv holds the epochs done so far (vocflow.status reads it)
    assert pd.read_csv(tmp_path / "cut" / "metrics.csv")["epoch"].tolist() == [1]
    epochs_run: list[int] = []
    caplog.set_level(logging.INFO, logger="vocflow.train")
    resumed = run(tiny_data, tmp_path / "cut", s,
                  lambda e, epoch, b, m: epochs_run.append(epoch) if e == "epoch_end" else None)
    assert epochs_run == [2, 3]  # epoch 1 was not redone
    assert "resumed at epoch 2 (batch 0)" in caplog.text
    metrics = assert_same_outputs(whole, resumed)
    assert metrics["resumed_from"].tolist() == [0, 1, 1]
    assert not (tmp_path / "cut" / "state").exists()


def test_stop_signal_mid_epoch_saves_and_resumes_exactly(tiny_data: dict,
                                                         tmp_path: Path) -> None:
    s = settings("classification")
    whole = run(tiny_data, tmp_path / "whole", s)

    def preempt(event: str, epoch: int, batch: int, model: Any) -> None:
        if (event, epoch, batch) == ("batch_end", 2, 1):
            os.kill(os.getpid(), signal.SIGUSR1)  # as SLURM's --signal=USR1@T would

    before = signal.getsignal(signal.SIGUSR1)
    with pytest.raises(Interrupted) as stopped:
        run(tiny_data, tmp_path / "cut", s, preempt)
    assert stopped.value.code == 128 + signal.SIGUSR1  # non-zero: SLURM/Snakemake re-run it
    assert signal.getsignal(signal.SIGUSR1) == before  # handlers restored
    state = torch.load(tmp_path / "cut" / "state" / STATE_FILE, weights_only=True)
    assert (state["run"]["epoch"], state["run"]["batch"]) == (2, 1)
    batches: list[tuple[int, int]] = []
    resumed = run(tiny_data, tmp_path / "cut", s,
                  lambda e, epoch, b, m: batches.append((epoch, b)) if e == "batch_end" else None)
    assert batches[0] == (2, 2)  # continues after the saved batch
    metrics = assert_same_outputs(whole, resumed)
    assert metrics["resumed_from"].tolist() == [0, 1, 1]


def test_sigterm_after_the_last_epoch_finishes_without_training(tiny_data: dict,
                                                                tmp_path: Path) -> None:
    s = settings("segmentation", epochs=2)
    whole = run(tiny_data, tmp_path / "whole", s)

    def term(event: str, epoch: int, batch: int, model: Any) -> None:
        if (event, epoch) == ("epoch_end", 2):
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Interrupted):
        run(tiny_data, tmp_path / "cut", s, term)
    calls: list[str] = []
    resumed = run(tiny_data, tmp_path / "cut", s, lambda e, *a: calls.append(e))
    assert calls == []  # nothing left to train: only the outputs are written
    assert assert_same_outputs(whole, resumed)["resumed_from"].tolist() == [0, 0]


def test_changed_settings_start_fresh(tiny_data: dict, tmp_path: Path,
                                      caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(Crash):
        run(tiny_data, tmp_path / "cut", settings("classification"),
            crash_at(("epoch_end", 1, 0)))
    caplog.set_level(logging.INFO)
    changed = settings("classification", lr=1e-3)
    metrics = pd.read_csv(run(tiny_data, tmp_path / "cut", changed)["metrics"])
    assert "starting fresh" in caplog.text and "changed: lr" in caplog.text
    assert metrics["resumed_from"].tolist() == [0, 0, 0]
    fresh = run(tiny_data, tmp_path / "fresh", changed)
    pd.testing.assert_frame_equal(metrics.drop(columns="seconds"),
                                  pd.read_csv(fresh["metrics"]).drop(columns="seconds"))


def test_unreadable_state_is_set_aside_and_starts_fresh(tiny_data: dict, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "cut" / "state"
    state.mkdir(parents=True)
    (state / STATE_FILE).write_bytes(b"not a torch file")
    caplog.set_level(logging.WARNING)
    metrics = pd.read_csv(run(tiny_data, tmp_path / "cut", settings("classification",
                                                                      epochs=1))["metrics"])
    assert f"cannot read resume file {state / STATE_FILE}" in caplog.text
    assert metrics["resumed_from"].tolist() == [0]
    aside = list((tmp_path / "cut").glob("state.corrupt-*"))
    assert len(aside) == 1 and (aside[0] / STATE_FILE).read_bytes() == b"not a torch file"


@pytest.mark.parametrize("damage", ["truncate", "empty"])
def test_corrupt_best_file_is_set_aside_and_the_cell_finishes(
        tiny_data: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    """A truncated best_e1.pt used to fail every retry; now the cell restarts and finishes."""
    s = settings("classification", epochs=2)
    with pytest.raises(Crash):
        run(tiny_data, tmp_path / "cut", s, crash_at(("epoch_end", 1, 0)))
    best = tmp_path / "cut" / "state" / "best_e1.pt"
    data = best.read_bytes()
    best.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"")
    caplog.set_level(logging.WARNING)
    paths = run(tiny_data, tmp_path / "cut", s)
    assert f"cannot read resume file {best}" in caplog.text and "starts afresh" in caplog.text
    assert pd.read_csv(paths["metrics"])["resumed_from"].tolist() == [0, 0]
    assert torch.load(paths["checkpoint"], weights_only=True)["meta"]["epoch"] in (1, 2)
    aside = list((tmp_path / "cut").glob("state.corrupt-*"))
    assert [p.name for p in sorted(aside[0].iterdir())] == ["best_e1.pt", STATE_FILE]
    assert not (tmp_path / "cut" / "state").exists()  # the fresh run's state, cleared


def test_clear_removes_the_parents_it_empties_up_to_the_root(tmp_path: Path) -> None:
    root = tmp_path / "results" / "state"
    cell = root / "classification" / "cnn" / "bce" / "fold0"
    other = root / "classification" / "cnn" / "focal" / "fold1"
    for folder in (cell, other):
        folder.mkdir(parents=True)
        (folder / STATE_FILE).write_bytes(b"state")
    StateStore(cell, "f", root).clear()
    assert not (root / "classification" / "cnn" / "bce").exists()
    assert (other / STATE_FILE).is_file()  # another cell's state, and its parents, stay
    StateStore(other, "f", root).clear()
    assert root.is_dir() and not any(root.iterdir())  # the root itself stays
    lone = tmp_path / "lone" / "fold0"
    lone.mkdir(parents=True)
    StateStore(lone, "f").clear()  # no root: only the cell's own folder goes
    assert (tmp_path / "lone").is_dir() and not lone.exists()
