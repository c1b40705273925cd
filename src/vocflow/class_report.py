"""The per-class classification table of the selected cell: precision, recall, F1 and support
per class (scikit-learn's ``classification_report``), plus ROC-AUC and AP, on every fold's
out-of-fold predictions at the tuned thresholds — the original study's per-class table.

Rows: one per class, then ``micro avg``, ``macro avg`` and ``weighted avg`` as
classification_report gives them (their roc_auc / ap: the macro means over classes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support

from vocflow import metrics
from vocflow.artifacts import Selection, dequantize
from vocflow.atomic import write_csv
from vocflow.data.cache import load_cache
from vocflow.errors import DataError
from vocflow.thresholds import read_thresholds

log = logging.getLogger(__name__)
COLUMNS = ["class", "precision", "recall", "f1", "support", "roc_auc", "ap", "threshold"]


def report_table(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray,
                 class_names: Sequence[str]) -> pd.DataFrame:
    """probs (N, C) in [0, 1], labels (N, C) 0/1, thresholds (C,): the table (COLUMNS)."""
    preds = (probs >= thresholds[None, :]).astype(int)
    p, r, f, n = precision_recall_fscore_support(labels, preds, average=None, zero_division=0)
    auc = metrics.per_class_roc_auc(probs, labels)
    ap = metrics.per_class_average_precision(probs, labels)
    rows = [{"class": c, "precision": p[i], "recall": r[i], "f1": f[i], "support": int(n[i]),
             "roc_auc": auc[i], "ap": ap[i], "threshold": float(thresholds[i])}
            for i, c in enumerate(class_names)]
    for average in ("micro", "macro", "weighted"):
        pa, ra, fa, _ = precision_recall_fscore_support(labels, preds, average=average,
                                                        zero_division=0)
        rows.append({"class": f"{average} avg", "precision": pa, "recall": ra, "f1": fa,
                     "support": int(n.sum()), "roc_auc": metrics.macro_roc_auc(probs, labels),
                     "ap": metrics.mean_average_precision(probs, labels),
                     "threshold": np.nan})
    return pd.DataFrame(rows, columns=COLUMNS)


def write_class_report(selection_yaml: str | Path, train_cache_dir: str | Path,
                       thresholds_yaml: str | Path, out_csv: str | Path) -> None:
    """The class_report rule: the table of the selected classification cell's OOF."""
    selection = Selection.read(selection_yaml)
    if selection.task != "classification":
        raise DataError(f"{selection_yaml} selects a {selection.task} cell; the class report "
                        "needs the classification one")
    oof, cache = selection.load_oof(), load_cache(train_cache_dir)
    probs = dequantize(oof["probs"], oof["scale"])
    table = report_table(probs, cache.labels[oof["index"]],
                         read_thresholds(thresholds_yaml, cache.class_names), cache.class_names)
    write_csv(out_csv, table)
    macro = table.set_index("class").loc["macro avg"]
    log.info("class report of %s: macro F1 %.4f, macro ROC-AUC %.4f over %d OOF images",
             selection.cell, macro["f1"], macro["roc_auc"], len(probs))
