"""The original study's segmentation comparison, built by segmentation_models_pytorch (smp).

LinkNet-R18, UNet-R34, FPN-R50, PSPNet-R50, DeepLabV3+-R50 and DeepLabV3-MobileNetV2 with smp's
own decoders and its defaults (the study used smp); the architectures are not written here.

Encoder weights: smp's ResNet and MobileNetV2 encoders are torchvision's networks, so their
ImageNet weights are torchvision's files (``ResNet34_Weights.IMAGENET1K_V1``...), fetched by the
``fetch_weights`` rule into the torch hub cache like every other model's and loaded strictly
into ``net.encoder`` (the 1000-way class layer dropped). smp's own hub download is never used
(``encoder_weights=None``): compute nodes have no internet.

Contract additions over vocflow.models: any input side works (the input is padded by
reflection to a multiple of the encoder's output stride and the logits cropped back); there is
no auxiliary head, so train and eval mode both return (N, K, H, W) logits.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from vocflow.models.registry import SEGMENTERS
from vocflow.models.weights import load_state, load_strict

# registry name -> (smp architecture class, smp encoder name)
SMP_ARCHS: dict[str, tuple[str, str]] = {
    "linknet_r18": ("Linknet", "resnet18"),
    "unet_r34": ("Unet", "resnet34"),
    "fpn_r50": ("FPN", "resnet50"),
    "pspnet_r50": ("PSPNet", "resnet50"),
    "deeplabv3plus_r50": ("DeepLabV3Plus", "resnet50"),
    "deeplabv3_mobilenet_v2": ("DeepLabV3", "mobilenet_v2"),
}
CLASS_LAYERS = ("fc.", "classifier.")  # torchvision's ImageNet heads; smp's encoders drop them


class SmpSegmenter(nn.Module):
    """An smp model behind the package's contract (``backbone``, ``pretrained``, any size)."""

    def __init__(self, net: nn.Module, pretrained: bool) -> None:
        super().__init__()
        self.net = net
        self.pretrained = pretrained  # read by vocflow.models.backbone_modules
        self.multiple = int(net.encoder.output_stride)

    @property
    def backbone(self) -> nn.Module:  # a property: registering it twice would double state keys
        return self.net.encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        if pad_h or pad_w:
            # Reflection needs padding < side; tiny inputs fall back to replicating the edge.
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        return self.net(x)[..., :h, :w]


def drop_unused_layers(encoder: nn.Module) -> None:
    """Delete the ResNet stages an encoder of depth < 5 never runs (PSPNet uses depth 3): their
    parameters would get no gradient and only cost optimiser memory."""
    depth = getattr(encoder, "_depth", 5)
    for stage in range(max(depth, 1), 5):  # layer{i} runs when depth >= i + 1
        if hasattr(encoder, f"layer{stage}"):
            delattr(encoder, f"layer{stage}")


def smp_segmenter(arch: str, num_classes: int, weights: str | None = None) -> SmpSegmenter:
    """Registry model ``arch`` of ``SMP_ARCHS`` with K = ``num_classes`` outputs; ``weights``
    is a torchvision ImageNet key (vocflow.models.weights) for the encoder, or None."""
    # Lazy: smp imports timm and huggingface_hub (~1.5 CPU-s), which jobs that never build
    # one of these models should not pay for.
    import segmentation_models_pytorch as smp

    decoder, encoder = SMP_ARCHS[arch]
    net = getattr(smp, decoder)(encoder_name=encoder, encoder_weights=None, classes=num_classes)
    if weights is not None:
        state = {k: v for k, v in load_state(weights).items() if not k.startswith(CLASS_LAYERS)}
        load_strict(net.encoder, state, weights)
    drop_unused_layers(net.encoder)
    return SmpSegmenter(net, pretrained=weights is not None)


for _arch in SMP_ARCHS:
    SEGMENTERS.register(_arch)(partial(smp_segmenter, _arch))
