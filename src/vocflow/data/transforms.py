"""Albumentations presets applied jointly to image and mask (masks use nearest neighbour).

Images arrive from the cache already at the training size (S, S, 3) uint8, so presets only
augment; out-of-image pixels introduced by geometric transforms are void (255) in the mask so
the losses ignore them.
"""

from __future__ import annotations

import albumentations as A
import numpy as np

from vocflow.errors import ConfigError

# ImageNet statistics: pretrained backbones expect them, and they are harmless from scratch.
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
VOID = 255


def _light() -> list[A.BasicTransform]:
    return [
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.06, 0.06), rotate=(-10, 10),
                 fill=0, fill_mask=VOID, p=0.5),
        A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.5),
    ]


PRESETS = {"none": list, "light": _light}


def build_transform(preset: str, seed: int = 0) -> A.Compose | None:
    """The training augmentation for ``preset``; ``None`` means no augmentation.

    Albumentations 2 draws from the Compose's own generator, which is random unless seeded.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown augmentation preset '{preset}'; valid: {sorted(PRESETS)}")
    steps = PRESETS[preset]()
    return A.Compose(steps, seed=seed) if steps else None


def normalize(images: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 normalised with ImageNet statistics."""
    out = (images.astype(np.float32) / 255.0 - MEAN) / STD
    return np.moveaxis(out, -1, -3)
