"""Every model and loss of the registries by name, with its parameters and their defaults, and
every attack by name — without importing torch.

The workflow checks a config against this table while the Snakefile is parsed, so a
misspelled name or parameter fails before any job starts and parsing needs no torch.
``tests/test_catalog.py`` checks that the table and the registered constructors agree, and
``tests/test_parse.py`` that the attack names are those of vocflow.attacks.ATTACKS: a new
model, loss or attack is added to both.

Every model also takes ``pretrained`` (vocflow.models.build_model resolves it); segmentation
losses also take ``aux_weight`` (vocflow.losses.build_loss).
"""

from __future__ import annotations

from typing import Any

from vocflow.errors import ConfigError

_TRANSFER_CLASSIFIER = {"dropout": 0.2}
_TORCHVISION_SEGMENTER = {"aux": True}

# task -> registry name -> parameter -> default (a parameter without default: required)
MODELS: dict[str, dict[str, dict[str, Any]]] = {
    "classification": {
        "cnn": {"widths": [16, 32, 64, 128], "kernel_size": 3, "batch_norm": True, "dense": 128,
                "dropout": 0.3, "pool": "avgmax"},
        "convnext_tiny": _TRANSFER_CLASSIFIER,
        "efficientnet_b0": _TRANSFER_CLASSIFIER,
        "efficientnet_b3": _TRANSFER_CLASSIFIER,
        "efficientnet_lite0": _TRANSFER_CLASSIFIER,
        "mobilenet_v3_large": _TRANSFER_CLASSIFIER,
        "resnet18": _TRANSFER_CLASSIFIER,
        "resnet50": _TRANSFER_CLASSIFIER,
    },
    "segmentation": {
        "deeplabv3_mobilenet_v3_large": _TORCHVISION_SEGMENTER,
        "deeplabv3_resnet101": _TORCHVISION_SEGMENTER,
        "deeplabv3_resnet50": _TORCHVISION_SEGMENTER,
        "fcn_resnet50": _TORCHVISION_SEGMENTER,
        "lite0_seg": {"decoder_width": 64, "dropout": 0.1},
        "lraspp_mobilenet_v3_large": {},
        "unet": {"base_width": 16, "levels": 4, "dropout": 0.0},
        # The original study's comparison, through segmentation_models_pytorch (smp defaults).
        "deeplabv3_mobilenet_v2": {},
        "deeplabv3plus_r50": {},
        "fpn_r50": {},
        "linknet_r18": {},
        "pspnet_r50": {},
        "unet_r34": {},
    },
}
MODEL_COMMON = {"pretrained": False}

LOSSES: dict[str, dict[str, dict[str, Any]]] = {
    "classification": {
        "asl": {"gamma_pos": 0.0, "gamma_neg": 4.0, "clip": 0.05, "eps": 1e-8},
        "bce": {},
        "focal": {"gamma": 2.0, "alpha": 0.25},
    },
    "segmentation": {
        "ce": {},
        "ce_dice": {"alpha": 0.5, "smooth": 1.0},
        "dice": {"smooth": 1.0},
        "focal": {"gamma": 2.0},
        "lovasz": {},
        "wce": {"weighting": "median", "c": 1.02},
    },
}
LOSS_COMMON = {"classification": {}, "segmentation": {"aux_weight": 0.5}}

# Names of config ``attacks.methods``; the last two train a perturbation generator first.
ATTACK_METHODS = ("fgsm", "fgm_l2", "pgd", "pgd_l2", "generator", "universal")
TRAINED_ATTACKS = ("generator", "universal")


def model_names(task: str) -> list[str]:
    return sorted(MODELS[task])


def loss_names(task: str) -> list[str]:
    return sorted(LOSSES[task])


def attack_names() -> list[str]:
    return sorted(ATTACK_METHODS)


def model_params(task: str, arch: str) -> dict[str, Any]:
    """Parameters (with defaults) a model of ``task`` accepts; an unknown arch lists the valid."""
    if arch not in MODELS[task]:
        raise ConfigError(f"unknown {task} model '{arch}'; valid: {', '.join(model_names(task))}")
    return {**MODELS[task][arch], **MODEL_COMMON}


def loss_params(task: str, loss: str) -> dict[str, Any]:
    """Parameters (with defaults) a loss of ``task`` accepts; an unknown loss lists the valid."""
    if loss not in LOSSES[task]:
        raise ConfigError(f"unknown {task} loss '{loss}'; valid: {', '.join(loss_names(task))}")
    return {**LOSSES[task][loss], **LOSS_COMMON[task]}
