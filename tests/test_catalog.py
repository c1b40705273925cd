"""The torch-free catalog agrees with the registries: the same names, and each entry's
parameters and defaults are those of its constructor."""

from __future__ import annotations

import inspect

import pytest

from vocflow import catalog, losses, models
from vocflow.artifacts import TASKS
from vocflow.errors import ConfigError

# Constructor arguments the workflow supplies itself, never the config.
SUPPLIED = {"num_classes", "weights", "class_counts", "class_names"}


def constructor_params(builder) -> dict[str, object]:
    """Keyword parameters and defaults of ``builder``, following ``**params`` into the class it
    instantiates (``cnn(num_classes, **params) -> SmallCNN(...)``)."""
    sig = inspect.signature(builder)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        ret = inspect.signature(builder).return_annotation
        target = vars(inspect.getmodule(builder))[ret.split(".")[-1].strip("'")]
        sig = inspect.signature(target.__init__)
    return {n: p.default for n, p in sig.parameters.items()
            if n not in SUPPLIED | {"self"} and p.kind is not p.VAR_KEYWORD}


@pytest.mark.parametrize("task", TASKS)
def test_same_names_as_the_registries(task: str) -> None:
    assert catalog.model_names(task) == models.registry_for(task).names()
    assert catalog.loss_names(task) == losses.registry_for(task).names()


@pytest.mark.parametrize(("task", "arch"), [(t, a) for t in TASKS
                                            for a in models.registry_for(t).names()])
def test_model_parameters_match_the_constructor(task: str, arch: str) -> None:
    found = constructor_params(models.registry_for(task).get(arch))
    expected = catalog.MODELS[task][arch]
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in found.items()} == expected


@pytest.mark.parametrize(("task", "name"), [(t, n) for t in TASKS
                                            for n in losses.registry_for(t).names()])
def test_loss_parameters_match_the_function(task: str, name: str) -> None:
    assert constructor_params(losses.registry_for(task).get(name)) == catalog.LOSSES[task][name]


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="unknown segmentation model 'unett'; valid: .*unet"):
        catalog.model_params("segmentation", "unett")
    with pytest.raises(ConfigError, match="unknown classification loss 'bcee'; valid: asl, bce"):
        catalog.loss_params("classification", "bcee")
    assert catalog.model_params("segmentation", "unet")["pretrained"] is False
    assert catalog.loss_params("segmentation", "ce")["aux_weight"] == 0.5
