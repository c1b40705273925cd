"""Matplotlib figures for the report (Agg backend: no display on cluster nodes)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def read_histories(paths: Iterable[str | Path]) -> pd.DataFrame:
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)


def learning_curves(history: pd.DataFrame, task: str, metric: str) -> plt.Figure:
    """Loss (train vs val) and the validation metric per epoch; one row per model × loss,
    folds overlaid."""
    runs = history[(history["task"] == task) & (history["epoch"] > 0)]
    cells = list(runs.groupby(["model", "loss"], sort=True).groups)
    fig, axes = plt.subplots(max(len(cells), 1), 2, figsize=(10, 3 * max(len(cells), 1)),
                             squeeze=False)
    for row, (model, loss) in enumerate(cells):
        cell = runs[(runs["model"] == model) & (runs["loss"] == loss)]
        for fold, part in cell.groupby("fold"):
            axes[row, 0].plot(part["epoch"], part["train_loss"], "-", label=f"train f{fold}")
            axes[row, 0].plot(part["epoch"], part["val_loss"], "--", label=f"val f{fold}")
            axes[row, 1].plot(part["epoch"], part[f"val_{metric}"], "-", label=f"fold {fold}")
        axes[row, 0].set(title=f"{model} / {loss}: loss", xlabel="epoch")
        axes[row, 1].set(title=f"{model} / {loss}: val {metric}", xlabel="epoch")
        for ax in axes[row]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def to_png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()
