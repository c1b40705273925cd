"""DenseCRF refinement of segmentation probabilities (Krähenbühl & Koltun 2011, pydensecrf2).

The CRF takes the unary from the softmax and adds a Gaussian (smoothness) and a bilateral
(appearance: position + colour) pairwise term. ``crf.yaml`` (written by vocflow.crf_search)
holds the searched setting and whether it is kept.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydensecrf.densecrf as dcrf
from pydensecrf.utils import unary_from_softmax

from vocflow.artifacts import read_yaml
from vocflow.errors import ConfigError, DataError, reading, rebuild

SEARCH_KEYS = ("sxy", "srgb", "compat", "iterations")
FIXED_KEYS = ("gaussian_sxy", "gaussian_compat")


@dataclass(frozen=True)
class CrfParams:
    """One DenseCRF setting; the searched keys are ``SEARCH_KEYS``."""

    sxy: float = 80.0  # bilateral spatial std (px at original size)
    srgb: float = 13.0  # bilateral colour std (0..255 RGB units)
    compat: float = 10.0  # bilateral Potts weight
    iterations: int = 5  # mean-field steps
    gaussian_sxy: float = 3.0  # smoothness spatial std (px)
    gaussian_compat: float = 3.0  # smoothness Potts weight


def dense_crf(image: np.ndarray, probs: np.ndarray, params: CrfParams) -> np.ndarray:
    """(H, W, 3) uint8 image + (K, H, W) probabilities -> (K, H, W) float32 CRF marginals."""
    k, h, w = probs.shape
    if image.shape != (h, w, 3):
        raise DataError(f"CRF image {image.shape} does not match probabilities {probs.shape}")
    crf = dcrf.DenseCRF2D(w, h, k)
    # Clip: log(0) would make a class impossible no matter what the pairwise terms say.
    unary = unary_from_softmax(np.clip(probs, 1e-6, 1.0).astype(np.float32))
    crf.setUnaryEnergy(np.ascontiguousarray(unary))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_compat)
    crf.addPairwiseBilateral(sxy=params.sxy, srgb=params.srgb,
                             rgbim=np.array(image, dtype=np.uint8, order="C"),  # writable copy
                             compat=params.compat)
    return np.asarray(crf.inference(int(params.iterations)), np.float32).reshape(k, h, w)


def param_grid(search: Mapping[str, Any]) -> list[CrfParams]:
    """Every combination of the searched lists; the fixed Gaussian keys pass through."""
    unknown = sorted(set(search) - set(SEARCH_KEYS) - set(FIXED_KEYS))
    if unknown:
        raise ConfigError(f"unknown CRF keys {unknown}; valid: {list(SEARCH_KEYS)} and "
                          f"{', '.join(FIXED_KEYS)} (post.crf.search in config/config.yaml)")
    fixed = {k: search[k] for k in FIXED_KEYS if k in search}
    lists = [list(search.get(k, [getattr(CrfParams, k)])) for k in SEARCH_KEYS]
    return [CrfParams(**dict(zip(SEARCH_KEYS, combo, strict=True)), **fixed)
            for combo in itertools.product(*lists)]


def read_crf(path: str | Path) -> tuple[bool, CrfParams | None]:
    """(keep, params) from crf.yaml; params are the best searched ones even when not kept."""
    data = read_yaml(path)
    params = data.get("params")
    with reading(path, "CRF settings file", rebuild(path), (TypeError, AttributeError)):
        return bool(data.get("keep")), CrfParams(**params) if params else None
