"""Model registries per task (filled by the model modules on import of ``vocflow.models``)."""

from __future__ import annotations

from torch import nn

from vocflow.registry import Registry

CLASSIFIERS: Registry[nn.Module] = Registry("classification model")
SEGMENTERS: Registry[nn.Module] = Registry("segmentation model")


def registry_for(task: str) -> Registry[nn.Module]:
    return CLASSIFIERS if task == "classification" else SEGMENTERS

