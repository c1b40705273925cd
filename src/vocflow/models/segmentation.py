"""Torchvision segmentation models (DeepLabV3, FCN, LR-ASPP) behind the package's contract.

Torchvision's models return ``{"out": ..., "aux": ...}`` always; here eval mode returns the
(N, K, H, W) logits tensor, and train mode returns the dict only when an auxiliary head exists
(so the loss can add the auxiliary term). Both outputs are bilinearly resized to the input.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import get_model, get_weight

from vocflow.models.registry import SEGMENTERS
from vocflow.models.weights import is_backbone_key, load_state, load_strict

HEAD_PREFIXES = ("fc.", "classifier.")  # ImageNet class layers that the backbones drop
log = logging.getLogger(__name__)


class TorchvisionSegmenter(nn.Module):
    def __init__(self, net: nn.Module, pretrained: bool) -> None:
        super().__init__()
        self.net = net
        self.pretrained = pretrained  # read by vocflow.models.backbone_modules

    @property
    def backbone(self) -> nn.Module:  # a property: registering it twice would double state keys
        return self.net.backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        size = x.shape[-2:]
        features = self.net.backbone(x)  # {"out"/"aux"} or {"low"/"high"} (LR-ASPP)
        head_in = features if "high" in features else features["out"]
        out = F.interpolate(self.net.classifier(head_in), size=size, mode="bilinear",
                            align_corners=False)
        aux_head = getattr(self.net, "aux_classifier", None)
        if not self.training or aux_head is None:
            return out
        aux = F.interpolate(aux_head(features["aux"]), size=size, mode="bilinear",
                            align_corners=False)
        return {"out": out, "aux": aux}


def _conv_like(conv: nn.Conv2d, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(conv.in_channels, out_channels, conv.kernel_size,
                     bias=conv.bias is not None)


def replace_class_layers(net: nn.Module, num_classes: int) -> None:
    """New final class convolutions (main, auxiliary, LR-ASPP's two) for ``num_classes``."""
    head = net.classifier
    if hasattr(head, "low_classifier"):  # LR-ASPP adds a low- and a high-level class map
        head.low_classifier = _conv_like(head.low_classifier, num_classes)
        head.high_classifier = _conv_like(head.high_classifier, num_classes)
        return
    for module in (head, getattr(net, "aux_classifier", None)):
        if module is not None:  # DeepLabHead / FCNHead are Sequentials ending in the class conv
            module[-1] = _conv_like(module[-1], num_classes)


def backbone_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ImageNet classifier weights -> keys of the segmentation backbone.

    ResNet keys stay (the backbone wraps the whole ResNet minus avgpool/fc); MobileNetV3's
    backbone wraps ``features``, so ``features.3.x`` becomes ``3.x``.
    """
    out = {}
    for key, value in state.items():
        if key.startswith(HEAD_PREFIXES):
            continue
        out[key.removeprefix("features.")] = value
    return out


def keeps_class_layers(weights: str, num_classes: int,
                       class_names: Sequence[str] | None) -> bool:
    """True when full (COCO-with-VOC-labels) ``weights`` already predict exactly our classes:
    background + ``class_names`` are the weights' categories, in their order."""
    categories = list(get_weight(weights).meta["categories"])  # "__background__", aeroplane...
    return (class_names is not None and num_classes == len(categories)
            and list(class_names) == categories[1:])


def torchvision_segmenter(arch: str, num_classes: int, weights: str | None = None,
                          aux: bool = True, class_names: Sequence[str] | None = None,
                          ) -> TorchvisionSegmenter:
    """``arch`` with ``weights`` (None, ImageNet backbone or full COCO weights), K classes.

    Full weights keep their class layers when ``class_names`` are VOC's 20 classes in VOC order
    (what those layers were trained to predict; the original study kept them), else only the
    class layers start from scratch.
    """
    has_aux = not arch.startswith("lraspp")
    kwargs = {"aux_loss": has_aux} if has_aux else {}
    if weights is not None and not is_backbone_key(arch, weights):
        # Full weights: build their exact shape (21 VOC classes, with aux) and load them.
        categories = len(get_weight(weights).meta["categories"])
        net = get_model(arch, weights=None, weights_backbone=None, num_classes=categories,
                        **kwargs)
        load_strict(net, load_state(weights), weights)
        if keeps_class_layers(weights, num_classes, class_names):
            log.info("%s: kept the class layers of %s (the class list is its VOC categories)",
                     arch, weights)
        else:
            replace_class_layers(net, num_classes)
            log.info("%s: re-initialised the class layers of %s for %d classes (the class list "
                     "is not its VOC categories)", arch, weights, num_classes)
    else:
        net = get_model(arch, weights=None, weights_backbone=None, num_classes=num_classes,
                        **kwargs)
        if weights is not None:
            load_strict(net.backbone, backbone_state(load_state(weights)), weights)
    if has_aux and not aux:
        net.aux_classifier = None
    return TorchvisionSegmenter(net, pretrained=weights is not None)


def lraspp(num_classes: int, weights: str | None = None,
           class_names: Sequence[str] | None = None) -> TorchvisionSegmenter:
    return torchvision_segmenter("lraspp_mobilenet_v3_large", num_classes, weights,
                                 class_names=class_names)


ARCHS = ("deeplabv3_resnet50", "deeplabv3_resnet101", "deeplabv3_mobilenet_v3_large",
         "fcn_resnet50")
for _arch in ARCHS:
    SEGMENTERS.register(_arch)(partial(torchvision_segmenter, _arch))
SEGMENTERS.register("lraspp_mobilenet_v3_large")(lraspp)
