"""The PASCAL VOC colour palette, so every mask in the report reads like the VOC devkit's PNGs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vocflow.artifacts import VOID


def voc_palette(n: int = 256) -> np.ndarray:
    """(n, 3) uint8 RGB colours of labels 0..n-1, the devkit's ``VOClabelcolormap.m``.

    Bit j of the label's three lowest-bit groups sets bit 7 - j of R, G and B, so label 1 is
    (128, 0, 0), 15 (person) (192, 128, 128) and 255 (void) (224, 224, 192).
    """
    colours = np.zeros((n, 3), np.uint8)
    for label in range(n):
        c, rgb = label, [0, 0, 0]
        for j in range(8):
            for channel in range(3):
                rgb[channel] |= ((c >> channel) & 1) << (7 - j)
            c >>= 3
        colours[label] = rgb
    return colours


PALETTE = voc_palette()


def colorize(mask: np.ndarray) -> np.ndarray:
    """(H, W) labels 0..254 or 255 (void) -> (H, W, 3) uint8 RGB."""
    return PALETTE[np.asarray(mask, dtype=np.uint8)]


def legend_entries(masks: Sequence[np.ndarray], class_names: Sequence[str],
                   ) -> list[tuple[str, np.ndarray]]:
    """(name, RGB in [0, 1]) of every label present in ``masks``; 0 is background, 255 void."""
    present = sorted({int(v) for m in masks for v in np.unique(m)})
    names = ["background", *class_names]
    entries = []
    for label in present:
        name = "void" if label == VOID else names[label] if label < len(names) else str(label)
        entries.append((name, PALETTE[label] / 255.0))
    return entries
