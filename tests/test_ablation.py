"""The ablation table: its rows in order, the unlabelled and labelled +ensemble row, and the
OOF submission gathered from shards."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vocflow.ablation import (
    ABLATION_COLUMNS,
    OOF_STEPS,
    STEPS,
    ablation_table,
    ensemble_row,
    oof_submission,
)
from vocflow.artifacts import TASKS
from vocflow.postprocess import Tally


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
