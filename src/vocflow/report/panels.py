"""Image panels: one example per class, and best/worst predictions with the VOC palette."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from matplotlib.patches import Patch

from vocflow.data.cache import Cache
from vocflow.report.figures import Fig, plt
from vocflow.report.palette import colorize, legend_entries
from vocflow.report.stats import OofEval


def _legend(fig: Fig, masks: Sequence[np.ndarray], class_names: Sequence[str]) -> float:
    """Palette legend of the labels in ``masks`` along the bottom; returns the figure fraction
    it takes, for ``tight_layout(rect=(0, that, 1, 1))``."""
    entries = legend_entries(masks, class_names)
    handles = [Patch(facecolor=colour, edgecolor="black", label=name) for name, colour in entries]
    ncol = max(1, min(len(handles), 8, int(fig.get_figwidth() / 1.2)))  # ~1.2 in per entry
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    rows = -(-len(handles) // ncol)
    return min(0.5, (0.2 * rows + 0.15) / fig.get_figheight())


def _fit(tile: np.ndarray, side: int, interpolation: int) -> np.ndarray:
    """``tile`` (H, W, 3) scaled to fit a white ``side`` × ``side`` square, aspect kept."""
    h, w = tile.shape[:2]
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(np.ascontiguousarray(tile), size, interpolation=interpolation)
    out = np.full((side, side, 3), 255, np.uint8)
    out[:small.shape[0], :small.shape[1]] = small
    return out


def examples_figure(cache: Cache, picks: Sequence[int | None], per_row: int = 4,
                    side: int = 96) -> Fig:
    """Image and mask of one example per class (original image), as the study's first figure.

    Drawn as one mosaic (a single axes): forty small axes would cost seconds of layout.
    """
    shown = [(c, i) for c, i in enumerate(picks) if i is not None]
    rows = max(1, -(-len(shown) // per_row))
    gap = 4
    canvas = np.full((rows * (side + 16), per_row * (2 * side + 3 * gap), 3), 255, np.uint8)
    fig, ax = plt.subplots(figsize=(canvas.shape[1] / 70, canvas.shape[0] / 70 + 1.0))
    masks = []
    for n, (cls, i) in enumerate(shown):
        r, c = divmod(n, per_row)
        y, x = r * (side + 16) + 14, c * (2 * side + 3 * gap)
        mask = cache.original_mask(i)
        masks.append(mask)
        canvas[y:y + side, x:x + side] = _fit(cache.original_image(i), side, cv2.INTER_AREA)
        canvas[y:y + side, x + side + gap:x + 2 * side + gap] = _fit(
            colorize(mask), side, cv2.INTER_NEAREST)
        ax.text(x + side, y - 3, cache.class_names[cls], ha="center", fontsize=8)
    ax.imshow(canvas, interpolation="nearest")
    ax.axis("off")
    fig.tight_layout(rect=(0, _legend(fig, masks, cache.class_names), 1, 1))
    return fig


def segmentation_panel(cache: Cache, ev: OofEval, positions: Sequence[int], title: str) -> Fig:
    """Rows of image | ground truth | OOF prediction at the training size, Kaggle Dice above."""
    fig, axes = plt.subplots(len(positions), 3, figsize=(6, 2 * len(positions) + 1.2),
                             squeeze=False)
    masks = []
    for row, pos in enumerate(positions):
        i = int(ev.index[pos])
        truth, pred = np.asarray(cache.masks[i]), ev.preds[pos]
        masks += [truth, pred]
        views = (cache.images[i], colorize(truth), colorize(pred))
        labels = (f"{cache.ids[i]}  Dice {ev.per_image[pos]:.2f}", "truth", "prediction")
        for ax, view, label in zip(axes[row], views, labels, strict=True):
            ax.imshow(view, interpolation="nearest")
            ax.set_title(label, fontsize=8)
            ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, _legend(fig, masks, cache.class_names), 1, 1))
    return fig


def _names(row: np.ndarray, class_names: Sequence[str]) -> str:
    names = [class_names[c] for c in np.flatnonzero(row)]
    return ", ".join(names) if names else "(none)"


def classification_panel(cache: Cache, ev: OofEval, positions: Sequence[int], title: str,
                         per_row: int = 4) -> Fig:
    """Images with their true and predicted labels and the row's Kaggle Dice."""
    rows = max(1, -(-len(positions) // per_row))
    fig, axes = plt.subplots(rows, per_row, figsize=(3 * per_row, 3.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for n, pos in enumerate(positions):
        i = int(ev.index[pos])
        ax = axes.ravel()[n]
        ax.imshow(cache.original_image(i))
        ax.set_title(f"{cache.ids[i]}  Dice {ev.per_image[pos]:.2f}\n"
                     f"true: {_names(cache.labels[i], cache.class_names)}\n"
                     f"pred: {_names(ev.preds[pos], cache.class_names)}", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def crf_panel(image: np.ndarray, truth: np.ndarray, before: np.ndarray, after: np.ndarray,
              scores: tuple[float, float], title: str, class_names: Sequence[str]) -> Fig:
    """One row at original size: image | truth | without CRF | with CRF (Kaggle Dice above)."""
    fig, axes = plt.subplots(1, 4, figsize=(10, 3.2), squeeze=False)
    views = (image, colorize(truth), colorize(before), colorize(after))
    labels = (title, "truth", f"without CRF  Dice {scores[0]:.2f}",
              f"with CRF  Dice {scores[1]:.2f}")
    for ax, view, label in zip(axes[0], views, labels, strict=True):
        ax.imshow(view, interpolation="nearest")
        ax.set_title(label, fontsize=8)
        ax.axis("off")
    fig.tight_layout(rect=(0, _legend(fig, [truth, before, after], class_names), 1, 1))
    return fig
