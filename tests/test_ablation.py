"""Ablation pieces: tallies that add up across shards, reconciliation, the table's rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vocflow.ablation import (
    ABLATION_COLUMNS,
    OOF_STEPS,
    RECONCILE,
    STEPS,
    Tally,
    ablation_table,
    ensemble_row,
    oof_submission,
    reconcile,
)
from vocflow.config import TASKS
from vocflow.errors import ConfigError

MASK = np.array([[0, 2], [2, 255]], np.uint8)  # classes 2 present, void ignored
EXPECTED = {"none": [1, 0, 0], "union": [1, 1, 0], "intersection": [0, 0, 0], "mask": [0, 1, 0]}


@pytest.mark.parametrize("mode", RECONCILE.names())
def test_reconcile_modes_by_hand(mode: str) -> None:
    got = reconcile(mode, np.array([1, 0, 0]), MASK, 3)
    assert got.dtype == np.uint8 and got.tolist() == EXPECTED[mode]


def test_unknown_reconcile_mode_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="intersection, mask, none, union"):
        reconcile("vote", np.zeros(3), MASK, 3)


def test_tally_scores_by_hand() -> None:
    t = Tally(2)
    t.add_labels(np.array([1, 0]), np.array([1, 1]))  # Dice 2*1/(1+2)
    t.add_labels(np.array([0, 0]), np.array([0, 0]))  # both empty: 1
    t.add_mask(np.array([[1, 1], [0, 2]]), np.array([[1, 0], [0, 255]]))
    assert t.cls_dice == pytest.approx([2 / 3, 1.0])
    # Kaggle stack Dice: pred {1: 2 px, 2: 1 px} vs truth {1: 1 px}; 2*1 / (3 + 1).
    assert t.seg_dice == pytest.approx([0.5])
    scores = t.scores("segmentation")
    # Confusion (void skipped): bg->bg 1, bg->1 1, 1->1 1. IoU: bg 1/2, c1 1/2, c2 absent.
    assert scores["miou"] == pytest.approx(0.5) and scores["kaggle"] == pytest.approx(0.5)
    assert t.scores("classification")["f1"] == pytest.approx(np.mean([1.0, 0.0]))


def test_tallies_merge_like_one_pass() -> None:
    rng = np.random.default_rng(0)
    items = [(rng.integers(0, 2, 3), rng.integers(0, 2, 3), rng.integers(0, 4, (4, 5)),
              rng.integers(0, 4, (4, 5))) for _ in range(6)]
    whole, parts = Tally(3), [Tally(3), Tally(3)]
    for i, (pl, tl, pm, tm) in enumerate(items):
        for t in (whole, parts[i % 2]):
            t.add_labels(pl, tl)
            t.add_mask(pm, tm)
    merged = Tally.merge([p.arrays("x_") for p in parts], "x_", 3)
    for task in TASKS:
        assert merged.scores(task) == pytest.approx(whole.scores(task), nan_ok=True)


def shard_part(rows: list[int], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    part = {"rows": np.asarray(rows), "ids": np.asarray([f"im{r}" for r in rows]),
            "cls_rle": np.asarray([f"{r} 1" for r in rows]),
            "seg_rle": np.asarray(["" for _ in rows])}
    for j in range(len(OOF_STEPS)):
        t = Tally(2)
        for _ in rows:
            t.add_labels(rng.integers(0, 2, 2), rng.integers(0, 2, 2))
            t.add_mask(rng.integers(0, 3, (3, 3)), rng.integers(0, 3, (3, 3)))
        part.update(t.arrays(f"s{j}_"))
    return part


def test_table_rows_in_order_and_unlabelled_ensemble() -> None:
    parts = [shard_part([0, 2], 0), shard_part([1], 1)]
    table = ablation_table(parts, 2, {"keep": False, "params": {"sxy": 1}, "gain": -0.01},
                           {"labelled": False, "images": 5}, use_tta=False)
    assert list(table.columns) == ABLATION_COLUMNS
    assert list(zip(table["task"], table["step"], strict=True)) == [
        (t, s) for t in TASKS for s in STEPS]
    ens = table[table["step"] == "+ensemble"]
    assert ens["kaggle"].isna().all() and ens["notes"].str.startswith("n/a").all()
    crf = table[(table["task"] == "segmentation") & (table["step"] == "+crf")]["notes"].item()
    assert "dropped" in crf
    tta = table[(table["task"] == "segmentation") & (table["step"] == "+tta")]["notes"].item()
    assert "not used" in tta
    assert (table[table["eval_set"] == "oof"]["images"] == 3).all()


def test_labelled_ensemble_row_reports_the_gain() -> None:
    test = {"labelled": True, "images": 4,
            "ensemble": {"classification": {"kaggle": 0.6, "f1": 0.5}},
            "folds": [{"classification": {"kaggle": 0.4}}, {"classification": {"kaggle": 0.5}}]}
    row = ensemble_row("classification", test)
    assert row["kaggle"] == 0.6 and np.isnan(row["miou"])
    assert "mean kaggle 0.4500" in row["notes"] and "+0.1500" in row["notes"]


def test_oof_submission_in_train_cache_order() -> None:
    frame = oof_submission([shard_part([0, 2], 0), shard_part([1], 1)])
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["Id", "Predicted"]
    assert frame["Id"].tolist()[::2] == ["im0_classification", "im1_classification",
                                         "im2_classification"]
    assert frame["Predicted"].tolist()[::2] == ["0 1", "1 1", "2 1"]
