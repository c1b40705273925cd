"""The config's grid: model and loss names, variants, per-cell settings, weights to fetch.

A grid cell is ``{task}/{model}/{loss}/fold{k}``. A model name is a registry name or a variant
declared under ``variants:`` (a registry ``arch`` plus model parameters and training
overrides); a loss name is a registry name or an entry of ``loss_params`` with a ``loss:`` key.
The workflow passes each cell only the settings that cell uses (a plain dict in ``params:``),
so editing one model's settings re-runs only that model's cells.

Training settings come from the top-level ``train:`` block, then the task's own ``train:``
block (only what differs), then the variant's overrides.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from vocflow.artifacts import BASELINE_MODEL, TASKS
from vocflow.catalog import loss_names, model_names, model_params
from vocflow.catalog import loss_params as catalog_loss_params
from vocflow.config import from_fields
from vocflow.errors import ConfigError
from vocflow.pretrained import weights_key


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
    lr: float = 1e-3  # after the frozen phase (the whole network); the only LR from scratch
    weight_decay: float = 1e-4
    augment: str = "light"  # preset of vocflow.data.transforms.PRESETS
    patience: int = 0  # early stopping: epochs without gain of what ``watch`` names; 0 = off
    monitor: str = ""  # validation metric that picks the best epoch; "" = the task's first
    watch: str = "metric"  # early stopping and plateau follow: metric (``monitor``) | loss
    seed: int = 0
    optimizer: str = "adamw"  # adamw | sgd (vocflow.optim.OPTIMIZERS)
    momentum: float = 0.9  # sgd only
    nesterov: bool = True  # sgd only
    schedule: str = "cosine"  # cosine|poly|plateau|exponential|constant (vocflow.optim)
    min_lr: float = 0.0  # floor of cosine and plateau
    poly_power: float = 0.9  # poly: lr · (1 - t / T) ** power
    lr_factor: float = 0.5  # plateau: LR multiplier when the metric stalls
    lr_patience: int = 2  # plateau: stalled epochs before the LR drops
    lr_gamma: float = 0.95  # exponential: LR multiplier per epoch
    freeze_epochs: int = 0  # transfer models: epochs with the pretrained backbone frozen
    unfreeze_blocks: int | None = None  # after them: the last N backbone blocks train; None = all
    lr_head: float | None = None  # head LR of the frozen phase; None = 10 · lr
    image_size: int | None = None  # model input side in px; None = the cache's image size
    crop_size: int | None = None  # train on random crops of this side; None = whole images
    amp: bool = True  # CUDA only: bf16 (or fp16 + grad scaler) mixed precision
    channels_last: bool = True  # NHWC memory format for convolutions (CPU and CUDA)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSettings:
        return from_fields(cls, data, "training settings")


# The cell's identity and the seed cannot be set by a train block or a variant.
IDENTITY_KEYS = frozenset({"task", "model", "arch", "loss", "criterion", "model_params",
                           "loss_params", "monitor", "seed"})
# Keys of a train block, and of a variant entry that override training settings; every other
# key of a variant is a model parameter.
TRAIN_KEYS = frozenset({f.name for f in fields(TrainSettings)} - IDENTITY_KEYS)


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


def train_block(config: dict[str, Any], task: str) -> dict[str, Any]:
    """The training settings of ``task``: the shared ``train:`` block, then the task's own."""
    return {**(config.get("train") or {}), **(config[task].get("train") or {})}


def cell_settings(config: dict[str, Any], task: str, model: str, loss: str) -> dict[str, Any]:
    """The resolved settings of one grid cell, as a plain (YAML-stable) dict."""
    if task not in TASKS:
        raise ConfigError(f"unknown task '{task}'; valid: {list(TASKS)}")
    arch, params, overrides = resolve_model(config, model)
    criterion, loss_params = resolve_loss(config, loss)
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
        **{**train_block(config, task), **overrides},
    )
    return settings.to_dict()


def check_grid(config: dict[str, Any]) -> None:
    """Fail before any job starts on what the schema cannot check: reserved and unknown names,
    a variant's unknown ``arch``, and the parameters of every variant and loss variant (unknown
    names, values of the wrong type) against vocflow.catalog. The schema checks the training
    settings a variant overrides."""
    variants = config.get("variants") or {}
    for task in TASKS:
        models, losses = model_names(task), loss_names(task)
        for model in config[task]["models"]:
            if model == BASELINE_MODEL:
                raise ConfigError(f"'{BASELINE_MODEL}' in {task}.models is reserved for the "
                                  "baseline (always on the leaderboard); remove it")
            if model in variants:
                _check_variant(config, task, model)
            elif model not in models:
                raise ConfigError(f"{task}.models: unknown model '{model}'; valid: "
                                  f"{models} or a name under 'variants'")
        for loss in config[task]["losses"]:
            criterion, params = resolve_loss(config, loss)
            if criterion not in losses:
                where = f"loss_params.{loss}.loss" if criterion != loss else f"{task}.losses"
                raise ConfigError(f"{where}: unknown loss '{criterion}' for {task}; valid: "
                                  f"{losses}")
            _check_params(params, catalog_loss_params(task, criterion), f"loss_params.{loss}",
                          f"{task} loss '{criterion}'")
    _check_unused(config)
    grid_weights(config)  # a bad `pretrained:` value, named before any job starts


def _check_variant(config: dict[str, Any], task: str, name: str) -> None:
    arch, params, _ = resolve_model(config, name)
    if arch not in model_names(task):
        raise ConfigError(f"variants.{name}.arch: unknown {task} model '{arch}' (variant "
                          f"'{name}' is in {task}.models); valid: {model_names(task)}")
    _check_params(params, model_params(task, arch), f"variants.{name}", f"model '{arch}'",
                  sorted(TRAIN_KEYS))


def _check_unused(config: dict[str, Any]) -> None:
    """Variants and loss variants no task uses yet: their names must exist in some task."""
    used = {m for task in TASKS for m in config[task]["models"]}
    for name, variant in (config.get("variants") or {}).items():
        tasks = [t for t in TASKS if (variant or {}).get("arch") in model_names(t)]
        if name not in used and not tasks:
            raise ConfigError(f"variants.{name}.arch: unknown model '{(variant or {}).get('arch')}'"
                              f"; valid: {sorted({m for t in TASKS for m in model_names(t)})}")
        if name not in used:
            _check_variant(config, tasks[0], name)
    used_losses = {loss for task in TASKS for loss in config[task]["losses"]}
    for name in sorted(set(config.get("loss_params") or {}) - used_losses):
        criterion, params = resolve_loss(config, name)
        tasks = [t for t in TASKS if criterion in loss_names(t)]
        if not tasks:
            raise ConfigError(f"loss_params.{name}: unknown loss '{criterion}'; valid: "
                              f"{sorted({n for t in TASKS for n in loss_names(t)})}")
        # Not in a grid yet: whatever the loss takes in any task that has it.
        accepted = {k: v for t in tasks for k, v in catalog_loss_params(t, criterion).items()}
        _check_params(params, accepted, f"loss_params.{name}", f"loss '{criterion}'")


def _check_params(params: dict[str, Any], accepted: dict[str, Any], where: str, owner: str,
                  also: list[str] | None = None) -> None:
    """Every key of ``params`` is a parameter of ``owner`` with a value of its default's type."""
    for key, value in params.items():
        if key not in accepted:
            close = difflib.get_close_matches(key, [*accepted, *(also or [])], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            extra = f", or a training setting: {also}" if also else ""
            raise ConfigError(f"{where}.{key}: unknown parameter of {owner}{hint}; valid: "
                              f"{sorted(accepted)}{extra}")
        # pretrained: true | false | a weights name (checked by grid_weights)
        wanted = (bool, str) if key == "pretrained" else _KINDS.get(type(accepted[key]))
        if wanted and not _is_kind(value, wanted):
            raise ConfigError(f"{where}.{key}: {value!r} is not {_KIND_NAMES[wanted]} (the "
                              f"default of {owner} is {accepted[key]!r}); fix the config")


# Type of a parameter's default -> the types a config value may have (an int where a float is
# expected is fine; a bool is never a number). A default of None accepts anything.
_KINDS: dict[type, tuple[type, ...]] = {bool: (bool,), int: (int,), float: (int, float),
                                        str: (str,), list: (list,)}
_KIND_NAMES = {(bool,): "true or false", (int,): "an integer", (int, float): "a number",
               (str,): "a string", (list,): "a list", (bool, str): "true, false or a name"}


def _is_kind(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


def cell_weights(config: dict[str, Any], model: str) -> list[str]:
    """The pretrained weights keys (0 or 1) that grid model ``model`` needs."""
    arch, params, _ = resolve_model(config, model)
    key = weights_key(arch, params.get("pretrained", False))
    return [key] if key else []


def grid_weights(config: dict[str, Any]) -> list[str]:
    """Sorted unique weights keys that the configured grid's models need."""
    return sorted({key for task in TASKS for model in config[task]["models"]
                   for key in cell_weights(config, model)})
