"""Matplotlib figures for the report (Agg backend: no display on cluster nodes).

Each function takes plain frames/arrays and returns a Figure; ``to_png`` renders and closes it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

Fig = plt.Figure


def to_png(fig: Fig, dpi: int = 80) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def read_histories(paths: Iterable[str | Path]) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in paths if Path(p).is_file()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ----------------------------------------------------------------------------- data


def class_frequency_figure(freq: pd.DataFrame) -> Fig:
    """Images per class and share of object pixels per class, side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.25 * len(freq) + 1.5), sharey=True)
    y = np.arange(len(freq))
    axes[0].barh(y, freq["images"], color="#4c72b0")
    axes[0].set(yticks=y, yticklabels=freq["class"], xlabel="images containing the class")
    share = freq["pixels"] / max(int(freq["pixels"].sum()), 1)
    axes[1].barh(y, 100 * share, color="#dd8452")
    axes[1].set(xlabel="% of object pixels (background and void excluded)")
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig


def image_size_figure(sizes: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Fig:
    """Histograms of original heights and widths, one colour per split."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    for split, (heights, widths) in sizes.items():
        axes[0].hist(heights, bins=20, alpha=0.6, label=split)
        axes[1].hist(widths, bins=20, alpha=0.6, label=split)
    axes[0].set(xlabel="height (px)", ylabel="images")
    axes[1].set(xlabel="width (px)")
    axes[0].legend()
    fig.tight_layout()
    return fig


def fold_balance_figure(balance: pd.DataFrame) -> Fig:
    """Image counts per fold (rows) and class (columns), coloured by count / mean over folds:
    white is perfectly balanced, red over- and blue under-represented."""
    values = balance.to_numpy()
    ratio = values / np.maximum(values.mean(axis=0, keepdims=True), 1e-9)
    fig, ax = plt.subplots(figsize=(0.45 * values.shape[1] + 2.5, 0.45 * values.shape[0] + 1.5))
    im = ax.imshow(ratio, cmap="coolwarm", vmin=0.5, vmax=1.5, aspect="auto")
    for (r, c), v in np.ndenumerate(values):
        ax.text(c, r, str(v), ha="center", va="center", fontsize=7)
    ax.set_xticks(range(values.shape[1]), balance.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(values.shape[0]), balance.index)
    fig.colorbar(im, ax=ax, label="count / fold mean", fraction=0.03)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- leaderboard


def grid_heatmap(board: pd.DataFrame, task: str) -> Fig:
    """Model × loss heat-map of the selection metric's fold mean (± std written in)."""
    rows = board[(board["task"] == task) & (board["model"] != "random")]
    metric = rows["selection_metric"].iloc[0]
    mean = rows.pivot(index="model", columns="loss", values="score_mean")
    std = rows.pivot(index="model", columns="loss", values="score_std")
    fig, ax = plt.subplots(figsize=(1.6 * mean.shape[1] + 2.5, 0.6 * mean.shape[0] + 1.5))
    im = ax.imshow(mean.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    best = np.unravel_index(np.nanargmax(mean.to_numpy(dtype=float)), mean.shape)
    for (r, c), v in np.ndenumerate(mean.to_numpy(dtype=float)):
        s = std.iat[r, c]
        text = "–" if np.isnan(v) else f"{v:.3f}\n± {0 if pd.isna(s) else s:.3f}"
        ax.text(c, r, text, ha="center", va="center", fontsize=8,
                color="black" if (r, c) == best else "white",
                bbox={"facecolor": "white", "alpha": 0.8} if (r, c) == best else None)
    ax.set_xticks(range(mean.shape[1]), mean.columns)
    ax.set_yticks(range(mean.shape[0]), mean.index)
    ax.set(xlabel="loss", ylabel="model", title=f"{task}: {metric} (mean over folds)")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- training


def learning_curves(history: pd.DataFrame, task: str, metric: str) -> Fig:
    """Loss and the selection metric per epoch, training (solid) beside validation (dashed);
    one row per model × loss, folds overlaid."""
    runs = history[(history["task"] == task) & (history["epoch"] > 0)]
    cells = list(runs.groupby(["model", "loss"], sort=True).groups)
    fig, axes = plt.subplots(max(len(cells), 1), 2, figsize=(10, 2.8 * max(len(cells), 1)),
                             squeeze=False)
    for row, (model, loss) in enumerate(cells):
        cell = runs[(runs["model"] == model) & (runs["loss"] == loss)]
        for fold, part in cell.groupby("fold"):
            line = axes[row, 0].plot(part["epoch"], part["train_loss"], "-",
                                     label=f"train f{fold}")[0]
            axes[row, 0].plot(part["epoch"], part["val_loss"], "--", color=line.get_color(),
                              label=f"val f{fold}")
            line = axes[row, 1].plot(part["epoch"], part[f"val_{metric}"], "--", marker=".",
                                     label=f"val f{fold}")[0]
            if f"train_{metric}" in part:  # the training-set score, from its own batches
                axes[row, 1].plot(part["epoch"], part[f"train_{metric}"], "-",
                                  color=line.get_color(), label=f"train f{fold}")
        axes[row, 0].set(title=f"{model} / {loss}: loss", xlabel="epoch")
        axes[row, 1].set(title=f"{model} / {loss}: {metric}", xlabel="epoch")
        for ax in axes[row]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- per class


def per_class_bars(per_class: pd.DataFrame, columns: list[str], title: str) -> Fig:
    """Grouped horizontal bars of ``columns`` per class (NaN: class absent, drawn empty)."""
    y = np.arange(len(per_class))
    height = 0.8 / len(columns)
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(per_class) + 1.5))
    for i, col in enumerate(columns):
        ax.barh(y + i * height, per_class[col].fillna(0), height=height, label=col)
    ax.set_yticks(y + height * (len(columns) - 1) / 2, per_class["class"])
    ax.set(xlim=(0, 1), title=title)
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def confusion_figure(cm: np.ndarray, names: list[str]) -> Fig:
    """Row-normalised confusion matrix (rows: truth, columns: prediction), void excluded."""
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    size = 0.32 * len(names) + 2
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true")
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- post, attacks


def threshold_curves_figure(curves: pd.DataFrame, task: str,
                            chosen: Mapping[str, float] | None = None) -> Fig:
    """Score against threshold, one line per class; dots mark the chosen thresholds."""
    fig, ax = plt.subplots(figsize=(9, 4))
    for cls, part in curves.groupby("class", sort=False):
        part = part.sort_values("threshold")
        line = ax.plot(part["threshold"], part["score"], lw=1, label=str(cls))[0]
        if chosen and str(cls) in chosen:
            t = chosen[str(cls)]
            ax.plot([t], [np.interp(t, part["threshold"], part["score"])], "o",
                    color=line.get_color())
    ax.set(xlabel="threshold", ylabel="score", title=f"{task}: per-class threshold curves")
    ax.legend(fontsize=6, ncol=2, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig


def attack_success_figure(summary: pd.DataFrame) -> Fig:
    """Success rate against ε, one panel per task, one line per attack (targeted dashed,
    "+ CRF" when the summary has a ``crf`` column)."""
    tasks = sorted(summary["task"].unique())
    keys = [k for k in ("attack", "targeted", "crf") if k in summary.columns]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.5), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        part = summary[summary["task"] == task]
        for key, run in part.groupby(keys, sort=True):
            named = dict(zip(keys, key, strict=True))
            run = run.groupby("epsilon", as_index=False)["success_rate"].mean()
            label = (f"{named['attack']}{' targeted' if named['targeted'] else ''}"
                     f"{' + CRF' if named.get('crf') else ''}")
            ax.plot(run["epsilon"], run["success_rate"], "--" if named["targeted"] else "-",
                    marker="o", label=label)
        ax.set(title=task, xlabel="ε", ylabel="success rate", ylim=(-0.02, 1.05))
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def runtime_figure(stages: pd.DataFrame) -> Fig:
    """Total wall hours and peak memory per stage; GPU stages in orange."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.35 * len(stages) + 1.5), sharey=True)
    y = np.arange(len(stages))
    colours = ["#dd8452" if g else "#4c72b0" for g in stages["gpu_stage"]]
    axes[0].barh(y, stages["wall_h"] * 60, color=colours)
    axes[0].set(yticks=y, yticklabels=stages["stage"], xlabel="total wall time (min)")
    axes[1].barh(y, stages["peak_rss_mb"].fillna(0), color=colours)
    axes[1].set(xlabel="peak resident memory (MB)")
    axes[0].invert_yaxis()
    fig.tight_layout()
    return fig
