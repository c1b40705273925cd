"""The per-class classification table agrees with scikit-learn's classification_report and
with the package's ROC-AUC and AP."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import classification_report, roc_auc_score

from vocflow.class_report import COLUMNS, report_table


def test_table_matches_classification_report() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (30, 3))
    probs = np.clip(0.6 * labels + 0.5 * rng.random((30, 3)), 0, 1)
    thresholds = np.array([0.5, 0.4, 0.7])
    table = report_table(probs, labels, thresholds, ["a", "b", "c"]).set_index("class")
    assert list(table.reset_index().columns) == COLUMNS
    expected = classification_report(labels, (probs >= thresholds).astype(int),
                                      target_names=["a", "b", "c"], output_dict=True,
                                      zero_division=0)
    for name in ("a", "b", "c", "micro avg", "macro avg", "weighted avg"):
        for ours, theirs in (("precision", "precision"), ("recall", "recall"),
                             ("f1", "f1-score"), ("support", "support")):
            assert table.loc[name, ours] == pytest.approx(expected[name][theirs]), (name, ours)
    assert table.loc["b", "roc_auc"] == pytest.approx(roc_auc_score(labels[:, 1], probs[:, 1]))
    assert table.loc["macro avg", "roc_auc"] == pytest.approx(
        roc_auc_score(labels, probs, average="macro"))
    assert table.loc["c", "threshold"] == 0.7
