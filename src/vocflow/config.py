"""Typed settings resolved from the validated config (a plain dict loaded from YAML).

The workflow passes each grid cell only the settings that cell uses (as a plain dict in
``params:``), so editing one model's settings re-runs only that model's cells.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from vocflow.errors import ConfigError

TASKS = ("classification", "segmentation")
BASELINE_MODEL = "random"  # the class-frequency baseline, always on the leaderboard
BASELINE_LOSS = "prior"


@dataclass(frozen=True)
class TrainSettings:
    """Everything one training cell needs besides its data and fold."""

    task: str
    model: str  # the grid name (a registry name or a variant name)
    arch: str  # the registry name the model is built from
    loss: str  # the grid name (a registry name or an entry of loss_params with a 'loss' key)
    criterion: str = ""  # the loss registry name; "" = same as ``loss``
    model_params: dict[str, Any] = field(default_factory=dict)
    loss_params: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    augment: str = "light"
    patience: int = 0  # 0 = no early stopping
    monitor: str = ""  # validation metric that picks the best epoch; "" = the task's first
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown training settings {unknown}; valid: {sorted(known)}")
        return cls(**data)


# Keys of a variant entry that override training settings; every other key is a model parameter.
TRAIN_KEYS = frozenset({"epochs", "batch_size", "lr", "weight_decay", "augment", "patience"})


def resolve_model(config: dict[str, Any], model: str) -> tuple[str, dict, dict]:
    """Split a grid model name into (registry arch, model params, training overrides).

    A name listed under ``variants:`` is ``{arch: NAME, key: value, ...}``; any other name is a
    registry name with its defaults.
    """
    variant = dict((config.get("variants") or {}).get(model) or {})
    arch = variant.pop("arch", model)
    train = {k: variant.pop(k) for k in list(variant) if k in TRAIN_KEYS}
    return arch, variant, train


def resolve_loss(config: dict[str, Any], loss: str) -> tuple[str, dict]:
    """Split a grid loss name into (registry name, parameters).

    ``loss_params: {focal_g3: {loss: focal, gamma: 3}}`` makes ``focal_g3`` a grid loss.
    """
    params = dict((config.get("loss_params") or {}).get(loss) or {})
    return params.pop("loss", loss), params


def cell_settings(config: dict[str, Any], task: str, model: str, loss: str) -> dict[str, Any]:
    """The resolved settings of one grid cell, as a plain (YAML-stable) dict."""
    if task not in TASKS:
        raise ConfigError(f"unknown task '{task}'; valid: {list(TASKS)}")
    arch, params, overrides = resolve_model(config, model)
    criterion, loss_params = resolve_loss(config, loss)
    train = {**(config[task].get("train") or {}), **overrides}
    settings = TrainSettings(
        task=task,
        model=model,
        arch=arch,
        loss=loss,
        criterion=criterion,
        model_params=params,
        loss_params=loss_params,
        monitor=str(config[task].get("selection_metric", "")),
        seed=int(config.get("seed", 0)),
        **train,
    )
    return settings.to_dict()


def check_grid(config: dict[str, Any]) -> None:
    """Fail early on grid names the schema cannot check: reserved and unknown names."""
    from vocflow.losses import CLASSIFICATION_LOSSES, SEGMENTATION_LOSSES
    from vocflow.models import registry_for

    variants = config.get("variants") or {}
    for task in TASKS:
        losses = CLASSIFICATION_LOSSES if task == "classification" else SEGMENTATION_LOSSES
        for model in config[task]["models"]:
            if model == BASELINE_MODEL:
                raise ConfigError(f"'{BASELINE_MODEL}' in {task}.models is reserved for the "
                                  "baseline (always on the leaderboard); remove it")
            arch = (variants.get(model) or {}).get("arch", model)
            if arch not in registry_for(task):
                raise ConfigError(f"{task}.models: unknown model '{model}'; valid: "
                                  f"{registry_for(task).names()} or a name under 'variants'")
        for loss in config[task]["losses"]:
            if resolve_loss(config, loss)[0] not in losses:
                raise ConfigError(f"{task}.losses: unknown loss '{loss}'; valid: "
                                  f"{losses.names()}")
