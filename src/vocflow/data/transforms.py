"""Albumentations presets applied jointly to image and mask, and ImageNet normalisation.

Geometric steps move the mask with nearest-neighbour interpolation, and pixels they bring in
from outside the image are void (255) in the mask, so the losses ignore them. Presets are sized
for the training side S, so one preset means the same deformation at 64 px and at 512 px.

Normalisation is done per batch (``normalize_batch``), not per item: loaders hand out uint8
batches, which are 4x smaller to pin and copy to a GPU, and the device normalises them. In
channels_last (the default on CPU and GPU) the normalised batch keeps the loader's NHWC
layout, so no transposition is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import albumentations as A
import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vocflow.artifacts import VOID
from vocflow.errors import ConfigError
from vocflow.imagenet import MEAN, STD

# normalize(x) = x · SCALE + SHIFT, i.e. (x / 255 - MEAN) / STD folded into one multiply-add.
SCALE = (1.0 / (255.0 * STD)).astype(np.float32)
SHIFT = (-MEAN / STD).astype(np.float32)


def _none(size: int) -> list[A.BasicTransform]:
    return []


def _light(size: int) -> list[A.BasicTransform]:
    return [
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.06, 0.06), rotate=(-10, 10),
                 fill=0, fill_mask=VOID, p=0.5),
        A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.5),
    ]


def _full(size: int) -> list[A.BasicTransform]:
    """The original study's set with its parameters: flip, 90° rotations, shift/scale/rotate,
    elastic (alpha 1, sigma 50 px), grid distortion (limit 0.3), noise, brightness/contrast
    (its resize is added by build_transform when sizes differ).

    At alpha 1 the elastic step moves pixels by far less than a pixel: it is the study's
    setting, not a strong deformation (``strong`` has one). GaussNoise std 1-3 % of 255
    matches the study's var_limit (10, 50) of albumentations 1.
    """
    return [
        A.HorizontalFlip(p=0.5),
        A.RandomRotate90(p=0.5),
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.0625, 0.0625), rotate=(-15, 15),
                 fill=0, fill_mask=VOID, p=0.5),
        A.ElasticTransform(alpha=1.0, sigma=50.0, fill=0, fill_mask=VOID, p=0.2),
        A.GridDistortion(num_steps=5, distort_limit=0.3, fill=0, fill_mask=VOID, p=0.2),
        A.GaussNoise(std_range=(0.01, 0.03), p=0.2),
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.3),
    ]


def _strong(size: int) -> list[A.BasicTransform]:
    """The study's kinds of steps without 90° rotations (scenes with an up and a down) and with
    deformations sized for the training side S: elastic alpha = S, sigma = S / 10 moves pixels
    by ~1 % of the side on average (the approximate, fixed-kernel blur is ~2x faster than an
    exact sigma-wide one); grid distortion limit 0.2.
    """
    return [
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.0625, 0.0625), rotate=(-15, 15),
                 fill=0, fill_mask=VOID, p=0.5),
        A.ElasticTransform(alpha=float(size), sigma=size / 10, approximate=True,
                           fill=0, fill_mask=VOID, p=0.2),
        A.GridDistortion(num_steps=5, distort_limit=0.2, fill=0, fill_mask=VOID, p=0.2),
        A.GaussNoise(std_range=(0.01, 0.03), p=0.2),
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.3),
    ]


PRESETS: dict[str, Callable[[int], list[A.BasicTransform]]] = {
    "none": _none, "light": _light, "full": _full, "strong": _strong}


def build_transform(preset: str, size: int, crop: int | None = None) -> A.Compose | None:
    """The training augmentation ``preset`` for (size, size) images; ``None`` when it does
    nothing.

    ``crop`` (the ``crop_size`` setting) ends it with a random (crop, crop) window: the model
    learns at the images' scale for (crop / size)^2 of the cost and still predicts whole
    images (torchvision's references/segmentation train on crops likewise). On CamVid frames
    at 256 px, 192 px crops scored 0.666 val mIoU against 0.620 for whole images at the same
    CPU budget (twice the epochs). The loader seeds the returned Compose per batch
    (``set_random_state``), so its own seed does not matter.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown augmentation preset '{preset}'; valid: {sorted(PRESETS)}")
    steps = PRESETS[preset](size)
    if crop is not None and crop != size:
        if not 0 < crop < size:
            raise ConfigError(f"crop_size {crop} must be below the model's input side {size} "
                              "(image_size, or data.image_size); fix it in the config")
        steps = [*steps, A.RandomCrop(crop, crop)]
    # Shapes are checked once by the cache; skipping the per-call check saves ~5 % per item.
    return A.Compose(steps, is_check_shapes=False, seed=0) if steps else None


def normalize(images: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 normalised with ImageNet statistics."""
    out = images.astype(np.float32) * SCALE + SHIFT
    return np.moveaxis(out, -1, -3)


def normalize_batch(x: torch.Tensor, size: int | None = None,
                    channels_last: bool = False) -> torch.Tensor:
    """(N, H, W, 3) uint8 on any device -> (N, 3, S, S) float32 normalised, on that device.

    ``size``: resize (bilinear, antialiased) when it differs from H, as for evaluation at a
    variant's image size.
    """
    if x.device.type == "cpu" and len(x):
        out = _normalize_nhwc(x) if channels_last else _normalize_planes(x.numpy())
    else:
        scale = torch.as_tensor(SCALE, device=x.device).view(1, 3, 1, 1)
        shift = torch.as_tensor(SHIFT, device=x.device).view(1, 3, 1, 1)
        # One fused kernel (a GPU job's per-batch launches are CPU time too); its output keeps
        # the input's NHWC strides, i.e. channels_last, so that case needs no further copy.
        out = torch.addcmul(shift, x.permute(0, 3, 1, 2), scale)
    if size is not None and size != out.shape[-1]:
        out = F.interpolate(out, size=(size, size), mode="bilinear", align_corners=False,
                            antialias=True)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return out.contiguous(memory_format=fmt)


@lru_cache(maxsize=8)
def _row_constants(width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """SCALE and SHIFT tiled along one NHWC image row: (W·3,) each."""
    return torch.from_numpy(np.tile(SCALE, width)), torch.from_numpy(np.tile(SHIFT, width))


def _normalize_nhwc(x: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in channels_last memory, on CPU.

    One widening pass, then one in-place multiply-add over (N·H, W·3) rows against the
    constants tiled along a row: the broadcast runs over rows, so the inner loop stays
    vectorised (broadcasting a 3-vector over the last axis is ~5x slower).
    """
    n, h, w, _ = x.shape
    out = x.to(torch.float32, memory_format=torch.contiguous_format, copy=True)  # never x itself
    rows = out.view(n * h, w * 3)
    scale, shift = _row_constants(w)
    torch.addcmul(shift, rows, scale, out=rows)
    return out.permute(0, 3, 1, 2)


def _normalize_planes(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 on CPU, ~2x faster than torch ops.

    OpenCV splits the channels once, then writes each plane's x · SCALE + SHIFT (one SIMD
    pass) straight into the NCHW output, whose channel c is a strided (N, H·W) view.
    """
    n, h, w, _ = images.shape
    out = np.empty((n, 3, h * w), np.float32)
    planes = cv2.split(np.ascontiguousarray(images).reshape(n * h, w, 3))
    for c, plane in enumerate(planes):
        flat = plane.reshape(n, h * w)
        dst = out[:, c]
        res = cv2.addWeighted(flat, float(SCALE[c]), flat, 0.0, float(SHIFT[c]), dst=dst,
                              dtype=cv2.CV_32F)
        if res is not dst:  # OpenCV fills dst in place; copy if a build ever does not
            dst[...] = res
    return torch.from_numpy(out.reshape(n, 3, h, w))
