"""UNet (Ronneberger et al., 2015): contracting path, transposed-conv expanding path, skips."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vocflow.models.classification import conv_block
from vocflow.models.registry import SEGMENTERS


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(conv_block(c_in, c_out), conv_block(c_out, c_out))


class UNet(nn.Module):
    """``levels`` down-sampling steps; widths double per level from ``base_width``.

    Output logits (N, K, H, W) for any H, W: decoder features are resized to the skip's size
    when a dimension was not divisible by 2**levels.
    """

    def __init__(self, num_classes: int, base_width: int = 16, levels: int = 4,
                 dropout: float = 0.0) -> None:
        super().__init__()
        widths = [base_width * 2**i for i in range(levels + 1)]
        self.down = nn.ModuleList([double_conv(3, widths[0])] + [
            double_conv(widths[i], widths[i + 1]) for i in range(levels)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                 for i in reversed(range(levels))])
        self.merge = nn.ModuleList([double_conv(2 * widths[i], widths[i])
                                    for i in reversed(range(levels))])
        self.dropout = nn.Dropout2d(dropout)
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = self.dropout(skips.pop())
        for up, merge in zip(self.up, self.merge, strict=True):
            skip = skips.pop()
            x = up(x)
            if x.shape[-2:] != skip.shape[-2:]:
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = merge(torch.cat([skip, x], dim=1))
        return self.head(x)


@SEGMENTERS.register("unet")
def unet(num_classes: int, **params) -> UNet:
    return UNet(num_classes, **params)
