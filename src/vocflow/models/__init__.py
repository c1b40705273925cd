"""Models by task. Importing this package registers every built-in model.

Contract (what vocflow.train and vocflow.predict rely on):

- ``build_model(task, arch, num_classes, pretrained=False, class_names=None, **params)`` builds
  registry model ``arch``; ``num_classes`` counts outputs (C for classification, C + 1 with
  background for segmentation); ``class_names`` (the C object classes, in label order) reach
  the constructors that take them: a COCO-pretrained torchvision segmenter keeps its VOC class
  layers when they are VOC's 20 classes in VOC order. ``pretrained`` is ``false`` (random
  init, works everywhere), ``true`` / ``"imagenet"``, ``"coco"`` (torchvision segmentation
  models) or a weights enum member name;
  see vocflow.models.weights. Weights come from the local cache only; a missing file raises
  MissingWeightsError (one line naming the file and the fetch command). The architecture, and
  so the state-dict keys, do not depend on ``pretrained``: a checkpoint is restored by building
  with ``pretrained=False`` and loading its state dict.
- Input: (N, 3, H, W) float, normalised with ImageNet mean/std (vocflow.data.transforms).
- Classification output: logits (N, C).
- Segmentation output: logits (N, K, H, W) at input resolution in eval mode. In train mode,
  models with an auxiliary head (deeplabv3_*, fcn_resnet50, unless ``aux: false``) return
  ``{"out": (N, K, H, W), "aux": (N, K, H, W)}``; the losses of vocflow.losses accept either.
- ``param_groups(model) -> (backbone params, head params)``; the backbone part is empty for a
  model trained from scratch (cnn, unet, any ``pretrained: false`` model), so the two-phase
  schedule has nothing to freeze there.
- ``backbone_modules(model)``: the pretrained modules to freeze (``requires_grad_(False)``) and to
  keep in eval mode (BatchNorm statistics) during the frozen phase; empty from scratch.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

from torch import nn

from vocflow.errors import ConfigError
from vocflow.models import (  # noqa: F401  (registers the models)
    classification,
    lite,
    segmentation,
    smp,
    transfer,
    unet,
)
from vocflow.models.registry import CLASSIFIERS, SEGMENTERS, registry_for
from vocflow.pretrained import has_weights, weights_key

__all__ = ["CLASSIFIERS", "SEGMENTERS", "backbone_blocks", "backbone_modules", "build_model",
           "param_groups", "registry_for"]
log = logging.getLogger(__name__)


def build_model(task: str, arch: str, num_classes: int, pretrained: bool | str = False,
                class_names: Sequence[str] | None = None, **params: Any) -> nn.Module:
    """Build ``arch`` for ``task`` (see the module docstring for the contract)."""
    registry = registry_for(task)
    builder = registry.get(arch)  # an unknown name fails here, before the weights question
    for supplied in ("weights", "class_names"):
        if supplied in params:
            raise ConfigError(f"{arch}: '{supplied}' is not a model parameter; choose weights "
                              "with 'pretrained'")
    key = weights_key(arch, pretrained)
    if key is None and has_weights(arch):
        log.info("%s: random initialisation (pretrained: false)", arch)
    extra: dict[str, Any] = {"weights": key} if key is not None else {}
    if class_names is not None and "class_names" in inspect.signature(builder).parameters:
        extra["class_names"] = list(class_names)
    return registry.build(arch, num_classes=num_classes, **extra, **params)


def backbone_modules(model: nn.Module) -> list[nn.Module]:
    """Pretrained modules to freeze in the first phase; [] for a model trained from scratch."""
    if not getattr(model, "pretrained", False):
        return []
    return [model.backbone]


def backbone_blocks(model: nn.Module) -> list[nn.Module]:
    """The pretrained backbone's blocks in input-to-output order (what ``unfreeze_blocks: N``
    counts from the end); [] from scratch.

    ResNets (torchvision's, smp's encoders, the segmenters' layer getters): the stem
    (conv1 + bn1), then every residual block of layer1..layer4. ``features`` networks
    (MobileNet, EfficientNet, ConvNeXt, smp's MobileNetV2): each feature module, stage
    Sequentials opened into their blocks. EfficientNet-Lite0: stem, each MBConv block, head conv.
    """
    modules = backbone_modules(model)
    return [block for module in modules for block in _blocks(module)]


def _blocks(module: nn.Module) -> list[nn.Module]:
    children = dict(module.named_children())
    if "layer1" in children:  # ResNet: stem, then the residual blocks of each stage
        stem = nn.ModuleList([children["conv1"], children["bn1"]])
        layers = [children[f"layer{i}"] for i in range(1, 5) if f"layer{i}" in children]
        return [stem, *[b for layer in layers for b in layer.children()]]
    if "features" in children:
        return _opened(children["features"])
    if "blocks" in children and "stem" in children:  # vocflow.models.lite.Lite0Encoder
        return [children["stem"], *children["blocks"]]
    if "_blocks" in children:  # the efficientnet-lite-pytorch network
        return [nn.ModuleList([module._conv_stem, module._bn0]), *module._blocks,
                nn.ModuleList([module._conv_head, module._bn1])]
    with_params = [c for c in children.values() if any(True for _ in c.parameters())]
    if type(module) is nn.Sequential:  # a wrapper (Lite0 classifier: LiteInput, network)
        return [b for child in with_params for b in _blocks(child)]
    if children and all(k.isdigit() for k in children):
        return with_params  # a layer getter over ``features`` (MobileNetV3 segmenters)
    return [module]


def _opened(features: nn.Module) -> list[nn.Module]:
    """Children of ``features``, plain Sequential stages opened into their blocks (torchvision's
    Conv2dNormActivation subclasses Sequential and stays whole)."""
    out = []
    for child in features.children():
        out += list(child.children()) if type(child) is nn.Sequential else [child]
    return out


def param_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(backbone parameters, head parameters): disjoint, together every parameter once."""
    backbone = [p for m in backbone_modules(model) for p in m.parameters()]
    ids = {id(p) for p in backbone}
    return backbone, [p for p in model.parameters() if id(p) not in ids]
