"""Figures of the attack study: success against ε, and example panels (Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from vocflow.atomic import atomic_path  # noqa: E402
from vocflow.attack_config import AttackSettings  # noqa: E402
from vocflow.report.palette import colorize  # noqa: E402

AMPLIFY_TO = 127.0  # the perturbation panel maps ±ε to ±127 grey levels around mid-grey


def save_figure(fig: plt.Figure, path: str | Path, dpi: int = 90) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)


def success_plot(table: pd.DataFrame) -> plt.Figure:
    """Rows: tasks; columns: untargeted success, targeted success, task metric after attack.

    One line per attack; dashed lines are segmentation after DenseCRF.
    """
    tasks = sorted(table["task"].unique())
    fig, axes = plt.subplots(len(tasks), 3, figsize=(13, 3.4 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        part = table[table["task"] == task]
        colours = {a: f"C{i}" for i, a in enumerate(sorted(table["attack"].unique()))}
        for (attack, crf), group in part.groupby(["attack", "crf"], sort=True):
            style = dict(ls="--" if crf else "-", marker="o", color=colours[attack],
                         label=f"{attack}{' + CRF' if crf else ''}")
            for col, targeted in enumerate((False, True)):
                g = group[group["targeted"] == targeted].sort_values("epsilon")
                axes[row, col].plot(g["epsilon"], g["success_rate"], **style)
            g = group[~group["targeted"].astype(bool)].sort_values("epsilon")
            axes[row, 2].plot(g["epsilon"], g["metric_adv"], **style)
        metric = part["metric"].iloc[0]
        titles = ("untargeted success", "targeted success", f"{metric} after untargeted attack")
        for col, title in enumerate(titles):
            ax = axes[row, col]
            ax.set(title=f"{task}: {title}", xlabel="ε (pixel levels of 255)", xscale="log",
                   ylim=(-0.02, 1.02))
            ax.set_xticks(sorted(part["epsilon"].unique()),
                          labels=[f"{e:g}" for e in sorted(part["epsilon"].unique())])
            ax.minorticks_off()
            if ax.lines:
                ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _labels_text(row: np.ndarray, class_names: Sequence[str]) -> str:
    names = [class_names[c] for c in np.flatnonzero(row)]
    return ", ".join(names) if names else "(none)"


def _image(ax: plt.Axes, pixels: np.ndarray, title: str) -> None:
    ax.imshow(np.clip(pixels, 0, 255).astype(np.uint8))
    ax.set_title(title, fontsize=7)
    ax.axis("off")


def _columns(example: dict[str, Any], i: int, class_names: Sequence[str],
             task: str) -> list[tuple[str, np.ndarray]]:
    """(title, RGB image) of each panel column for image ``i`` of one mode's example."""
    x = example["x"][i].permute(1, 2, 0).numpy()
    delta = example["x_adv"][i].permute(1, 2, 0).numpy() - x
    amplified = 128 + delta * (AMPLIFY_TO / max(example["eps"], 1e-12))
    cols = [("clean", x), (f"perturbation ×{AMPLIFY_TO / example['eps']:.0f}", amplified),
            (f"adversarial (ε={example['eps']:g})", example["x_adv"][i].permute(1, 2, 0).numpy())]
    if task == "classification":
        return cols
    reference = example["target"] if example["targeted"] else example["truth"]
    masks = [("clean prediction", example["clean"][i]), ("adversarial prediction",
                                                         example["adv"][i])]
    if example["adv_crf"] is not None:
        masks.append(("adversarial + CRF", example["adv_crf"][i]))
    if reference is not None:
        masks.append(("target" if example["targeted"] else "truth", reference[i]))
    return cols + [(t, colorize(m.astype(np.uint8))) for t, m in masks]


def _caption(example: dict[str, Any], i: int, class_names: Sequence[str]) -> str:
    """Label sets of a classification example: clean, adversarial, target or truth."""
    lines = [f"clean: {_labels_text(example['clean'][i], class_names)}",
             f"adversarial: {_labels_text(example['adv'][i], class_names)}"]
    reference = example["target"] if example["targeted"] else example["truth"]
    if reference is not None:
        kind = "target" if example["targeted"] else "truth"
        lines.append(f"{kind}: {_labels_text(reference[i], class_names)}")
    return "\n".join(lines)


def attack_panel(examples: list[dict[str, Any]], s: AttackSettings,
                 class_names: Sequence[str]) -> plt.Figure:
    """One row per (mode, example image): clean, amplified perturbation, adversarial, and the
    predictions (segmentation masks, or classification label sets as a caption)."""
    items = [(ex, i) for ex in examples for i in range(min(s.panels, len(ex["x"])))]
    n_cols = len(_columns(items[0][0], 0, class_names, s.task)) + (s.task == "classification")
    fig, axes = plt.subplots(len(items), n_cols, figsize=(2.1 * n_cols, 2.3 * len(items)),
                             squeeze=False)
    for row, (ex, i) in enumerate(items):
        for col, (title, pixels) in enumerate(_columns(ex, i, class_names, s.task)):
            _image(axes[row, col], pixels, title)
        mode = "targeted" if ex["targeted"] else "untargeted"
        axes[row, 0].set_ylabel(mode, fontsize=8)
        axes[row, 0].set_title(f"{mode}: clean", fontsize=7)
        if s.task == "classification":
            axes[row, -1].text(0, 0.5, _caption(ex, i, class_names), fontsize=7, va="center",
                               wrap=True)
            axes[row, -1].axis("off")
    fig.suptitle(f"{s.task}: {s.method}", fontsize=10)
    fig.tight_layout()
    return fig
