"""Torchvision classifiers for transfer learning: ImageNet backbone + a new multi-label head.

The backbone is the torchvision network with its 1000-class layer removed, so it maps
(N, 3, H, W) -> (N, F) features; the head is dropout + a linear layer to C logits. Only the
head is newly initialised, which is what the two-phase schedule trains first.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torchvision.models import get_model

from vocflow.models.registry import CLASSIFIERS
from vocflow.models.weights import load_state, load_strict


class TransferClassifier(nn.Module):
    """``backbone`` (N, 3, H, W) -> (N, F), then ``head`` -> (N, C) logits."""

    def __init__(self, backbone: nn.Module, features: int, num_classes: int, dropout: float,
                 pretrained: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(features, num_classes))
        self.pretrained = pretrained  # read by vocflow.models.backbone_modules

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def strip_head(arch: str, net: nn.Module) -> int:
    """Replace the ImageNet class layer of ``net`` by Identity in place; return its input width.

    MobileNetV3 and ConvNeXt keep their pretrained pre-logit layers (960 -> 1280 linear,
    LayerNorm) in the backbone; only the final 1000-way linear goes.
    """
    if arch.startswith("resnet"):
        width, net.fc = net.fc.in_features, nn.Identity()
    elif arch.startswith("efficientnet"):  # classifier = Dropout, Linear
        width, net.classifier = net.classifier[1].in_features, nn.Identity()
    elif arch == "mobilenet_v3_large":  # classifier = Linear, Hardswish, Dropout, Linear
        width, net.classifier[3] = net.classifier[3].in_features, nn.Identity()
    elif arch == "convnext_tiny":  # classifier = LayerNorm2d, Flatten, Linear
        width, net.classifier[2] = net.classifier[2].in_features, nn.Identity()
    else:
        raise ValueError(f"no head rule for '{arch}'")
    return int(width)


def torchvision_classifier(arch: str, num_classes: int, weights: str | None = None,
                           dropout: float = 0.2) -> TransferClassifier:
    """``arch`` with ``weights`` (a key from vocflow.models.weights, or None) and a C-way head."""
    net = get_model(arch, weights=None)
    if weights is not None:
        load_strict(net, load_state(weights), weights)
    width = strip_head(arch, net)
    return TransferClassifier(net, width, num_classes, dropout, pretrained=weights is not None)


ARCHS = ("resnet18", "resnet50", "efficientnet_b0", "efficientnet_b3", "mobilenet_v3_large",
         "convnext_tiny")
for _arch in ARCHS:
    CLASSIFIERS.register(_arch)(partial(torchvision_classifier, _arch))
