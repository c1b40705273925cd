"""Multi-label classifiers: C sigmoid outputs, returned as logits (N, C)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vocflow.models.registry import CLASSIFIERS


def conv_block(c_in: int, c_out: int, kernel_size: int = 3,
               batch_norm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2,
                                         bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class AvgMaxPool(nn.Module):
    """Concatenated global average and max pooling: (N, F, H, W) -> (N, 2F).

    Max pooling keeps the evidence of small objects that an average over the image dilutes.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


class SmallCNN(nn.Module):
    """Conv-BN-ReLU stages (each halving the resolution), global pooling, dense + dropout.

    The from-scratch network of the original study, with widths from config; ``pool`` is
    "avg" (the original) or "avgmax".
    """

    def __init__(self, num_classes: int, widths: Sequence[int] = (16, 32, 64, 128),
                 kernel_size: int = 3, batch_norm: bool = True, dense: int = 128,
                 dropout: float = 0.3, pool: str = "avgmax") -> None:
        super().__init__()
        stages, c_in = [], 3
        for width in widths:
            stages += [conv_block(c_in, width, kernel_size, batch_norm),
                       conv_block(width, width, kernel_size, batch_norm), nn.MaxPool2d(2)]
            c_in = width
        self.features = nn.Sequential(*stages)
        if pool not in ("avg", "avgmax"):
            raise ValueError(f"pool must be 'avg' or 'avgmax', got '{pool}'")
        pooling = AvgMaxPool() if pool == "avgmax" else nn.Sequential(nn.AdaptiveAvgPool2d(1),
                                                                       nn.Flatten())
        c_pool = 2 * c_in if pool == "avgmax" else c_in
        self.head = nn.Sequential(pooling, nn.Linear(c_pool, dense),
                                  nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(dense, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, H, W) -> (N, C)
        return self.head(self.features(x))


@CLASSIFIERS.register("cnn")
def cnn(num_classes: int, **params) -> SmallCNN:
    return SmallCNN(num_classes, **params)
