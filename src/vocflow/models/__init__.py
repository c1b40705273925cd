"""Models by task. Importing this package registers every built-in model."""

from __future__ import annotations

from typing import Any

from torch import nn

from vocflow.models import classification, unet  # noqa: F401  (registers the models)
from vocflow.models.registry import CLASSIFIERS, SEGMENTERS, registry_for

__all__ = ["CLASSIFIERS", "SEGMENTERS", "build_model", "registry_for"]


def build_model(task: str, arch: str, num_classes: int, **params: Any) -> nn.Module:
    """Build ``arch`` for ``task``; ``num_classes`` counts outputs (C, or C + 1 with background)."""
    return registry_for(task).build(arch, num_classes=num_classes, **params)
