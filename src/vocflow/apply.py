"""``vocflow predict``: the study's selected pipeline applied to new images.

What the workflow's test prediction does, for any JPEG/PNG/npy image of any size: the models
and TTA of ``results/{task}/predictor.yaml`` (the selected cell's fold models, or its refits,
as the predict rule used them), resize to the cache side exactly as ingestion does, then
vocflow.postprocess: per-class thresholds, DenseCRF when the search kept it, reconciliation,
segmentation at the image's original size. Runs on the device vocflow.runtime picks (CUDA when
present, else CPU).

Writes into the output folder, per image ``NAME``: ``masks/NAME.png`` (palette PNG: label
values 0..C, VOC colours), ``overlays/NAME.png`` (the image with the mask's colours blended in),
and one ``labels.csv``: image, then per class its probability ``p_CLASS`` and the final 0/1
decision ``CLASS``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn

from vocflow.artifacts import read_yaml
from vocflow.atomic import write_csv
from vocflow.checkpoints import input_side, load_models
from vocflow.data.cache import square_image
from vocflow.data.transforms import normalize
from vocflow.errors import DataError, reading, rebuild
from vocflow.postprocess import Pipeline, post_image
from vocflow.predict import ensemble_probs
from vocflow.report.palette import PALETTE, colorize
from vocflow.runtime import pick_device

log = logging.getLogger(__name__)
SUFFIXES = (".jpg", ".jpeg", ".png", ".npy")
OVERLAY_ALPHA = 0.5  # weight of the mask's colours in the overlay


@dataclass
class Predictor:
    """One task's models as the workflow's predict rule used them."""

    models: list[nn.Module]
    tta: bool
    image_size: int
    class_names: list[str]
    reconcile: str

    @classmethod
    def read(cls, path: Path, workdir: Path, device: torch.device) -> Predictor:
        if not path.is_file():
            raise DataError(f"{path} is missing: run the workflow first (snakemake), which "
                            "writes it with the test prediction")
        spec = read_yaml(path)
        with reading(path, "predictor file", rebuild(path), (KeyError, TypeError, ValueError)):
            size = int(spec["image_size"])
            paths = [workdir / p for p in spec["checkpoints"]]
            names = list(spec["class_names"])
        return cls(load_models(paths, size, workdir, device), bool(spec.get("tta")), size,
                   names, str(spec.get("reconcile", "none")))


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a JPEG/PNG (grey and RGBA converted) or an .npy array."""
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type; give JPEG, PNG or .npy images")
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    with reading(path, "image", "give a complete JPEG, PNG or .npy image"):
        if path.suffix.lower() == ".npy":
            image = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as img:
                image = np.asarray(img.convert("RGB"))
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8 \
            or min(image.shape[:2]) < 1:
        raise DataError(f"{path}: need an (H, W, 3) uint8 image, got {image.shape} "
                        f"{image.dtype}")
    return np.ascontiguousarray(image[..., :3])


@torch.no_grad()
def task_probs(predictor: Predictor, task: str, image: np.ndarray,
               device: torch.device) -> np.ndarray:
    """classification (C,) or segmentation (K, S, S) probabilities of one original image."""
    # As the workflow predicts (vocflow.predict.model_images): straight to the models' own
    # side when they were trained at one, else to the cache side.
    small = square_image(image, input_side(predictor.models, predictor.image_size))
    x = torch.from_numpy(normalize(small[None])).to(device)
    return ensemble_probs(predictor.models, x, task, predictor.tta)[0].float().cpu().numpy()


def output_names(paths: Sequence[Path]) -> list[str]:
    """A file stem per image, made unique (``a``, ``a_2``) when stems repeat."""
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        seen[path.stem] = seen.get(path.stem, 0) + 1
        names.append(path.stem if seen[path.stem] == 1 else f"{path.stem}_{seen[path.stem]}")
    return names


def write_mask(path: Path, mask: np.ndarray) -> None:
    png = Image.fromarray(mask.astype(np.uint8), mode="P")
    png.putpalette(PALETTE.ravel().tolist())
    tmp = path.with_name(path.name + ".tmp")
    png.save(tmp, format="PNG")
    tmp.replace(path)  # a killed run leaves no complete-looking mask


def write_overlay(path: Path, image: np.ndarray, mask: np.ndarray) -> None:
    blend = (1 - OVERLAY_ALPHA) * image + OVERLAY_ALPHA * colorize(mask)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(blend.round().astype(np.uint8)).save(tmp, format="PNG")
    tmp.replace(path)


def predict_images(images: Sequence[str | Path], out_dir: str | Path,
                   results: str | Path = "results") -> pd.DataFrame:
    """Apply the selected pipeline of the study in ``results`` to ``images``; write masks,
    overlays and labels.csv into ``out_dir`` (see the module docstring); return the table."""
    results = Path(results)
    workdir = results.parent  # the workflow's paths are relative to its working directory
    device = pick_device()
    paths = [Path(p) for p in images]
    for path in paths:  # fail on a bad input before any model runs
        if path.suffix.lower() not in SUFFIXES or not path.is_file():
            read_image(path)
    predictors = {task: Predictor.read(results / task / "predictor.yaml", workdir, device)
                  for task in ("classification", "segmentation")}
    names = predictors["classification"].class_names
    pipe = Pipeline.read(names, {t: results / t / "thresholds.yaml" for t in predictors},
                         results / "segmentation" / "crf.yaml",
                         predictors["classification"].reconcile)
    out = Path(out_dir)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    rows = []
    for path, name in zip(paths, output_names(paths), strict=True):
        image = read_image(path)
        cls = task_probs(predictors["classification"], "classification", image, device)
        seg = task_probs(predictors["segmentation"], "segmentation", image, device)
        post = post_image(pipe, cls, seg, 1.0, image)  # mask at the original (H, W)
        write_mask(out / "masks" / f"{name}.png", post.mask)
        write_overlay(out / "overlays" / f"{name}.png", image, post.mask)
        rows.append({"image": str(path), "mask": f"masks/{name}.png",
                     **{f"p_{c}": float(p) for c, p in zip(names, cls, strict=True)},
                     **{c: int(v) for c, v in zip(names, post.final, strict=True)}})
        log.info("%s: %dx%d, classes %s", path, image.shape[1], image.shape[0],
                 [c for c, v in zip(names, post.final, strict=True) if v] or "none")
    table = pd.DataFrame(rows)
    write_csv(out / "labels.csv", table)
    log.info("%d images on %s -> %s", len(rows), device, out)
    return table
