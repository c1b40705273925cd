"""Attack names of config ``attacks.methods`` -> constructors, and the settings of one attack job.

Every attack works on both tasks; a builder takes the whole ``AttackSettings`` and reads what it
needs (PGD its steps, the generators their training settings).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from vocflow.artifacts import TASKS
from vocflow.attacks.generator import GeneratorAttack
from vocflow.attacks.gradient import FGSM, PGD, Objective
from vocflow.attacks.objectives import Goal, build_target
from vocflow.config import from_fields
from vocflow.errors import ConfigError
from vocflow.registry import Registry

SPLITS = ("validation", "test")


class Attack(Protocol):
    norm: str
    trains: bool  # True: ``fit`` must run before attacking (the generators)

    def __call__(self, model: nn.Module, x: torch.Tensor, objective: Objective,
                 eps: float) -> torch.Tensor: ...


@dataclass(frozen=True)
class AttackSettings:
    """Everything one attack job (one task × one method) needs besides its files."""

    task: str
    method: str
    epsilons: list[float]
    targeted: list[bool] = field(default_factory=lambda: [False, True])
    target: str = ""  # target spec (vocflow.attacks.objectives.TARGET_FORMS)
    split: str = "validation"
    n_images: int = 8
    batch_size: int = 8
    pgd: dict[str, Any] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)
    crf: bool = True
    panels: int = 2
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttackSettings:
        return from_fields(cls, data, "attack settings")


ATTACKS: Registry[Attack] = Registry("attack")


def _pgd_params(s: AttackSettings) -> dict[str, Any]:
    return {**s.pgd, "seed": s.seed}


def _generator_params(s: AttackSettings) -> dict[str, Any]:
    return {**s.generator, "seed": s.seed}


# name -> builder from the job's settings; gradient attacks by norm, generators by kind.
for _name, _build in {
    "fgsm": lambda s: FGSM("linf"),
    "fgm_l2": lambda s: FGSM("l2"),
    "pgd": lambda s: PGD("linf", **_pgd_params(s)),
    "pgd_l2": lambda s: PGD("l2", **_pgd_params(s)),
    "generator": lambda s: GeneratorAttack("image", **_generator_params(s)),
    "universal": lambda s: GeneratorAttack("universal", **_generator_params(s)),
}.items():
    ATTACKS.register(_name)(lambda settings, build=_build: build(settings))


def build_attack(settings: AttackSettings) -> Attack:
    """The attack of ``settings.method``; an unknown name fails with the valid names."""
    return ATTACKS.build(settings.method, settings=settings)


def attack_settings(config: dict[str, Any], task: str, method: str) -> dict[str, Any]:
    """Settings of one attack job from the validated config, as a plain (YAML-stable) dict.

    Only what this job uses goes in, so editing e.g. the generator's settings re-runs only the
    generator jobs (Snakemake tracks params changes).
    """
    a = config["attacks"]
    trains = method in ("generator", "universal")
    settings = AttackSettings(
        task=task, method=method, epsilons=[float(e) for e in a["epsilons"]],
        targeted=list(a.get("targeted", [False, True])),
        target=str((a.get("targets") or {}).get(task, "")),
        split=a.get("split", "validation"), n_images=int(a["n_images"]),
        batch_size=int(a.get("batch_size", 8)),
        pgd=dict(a.get("pgd") or {}) if method.startswith("pgd") else {},
        generator=dict(a.get("generator") or {}) if trains else {},
        crf=bool(a.get("crf", False)) and task == "segmentation",
        panels=int(a.get("panels", 2)), seed=int(config.get("seed", 0)))
    return settings.to_dict()


def check_attacks(config: dict[str, Any]) -> list[str]:
    """Fail at workflow parse time on unknown attack names, splits and target forms.

    Returns the configured methods ([] when the section is absent or lists none). Target class
    names are checked against ``data.class_names`` except for the Kaggle layout, whose names
    come from its csv header (checked when the attack job starts).
    """
    a = config.get("attacks") or {}
    methods = list(a.get("methods") or [])
    for method in methods:
        if method not in ATTACKS:
            raise ConfigError(f"attacks.methods: unknown attack '{method}'; valid: "
                              f"{', '.join(ATTACKS.names())}")
    if methods and a.get("split", "validation") not in SPLITS:
        raise ConfigError(f"attacks.split '{a['split']}' is unknown; valid: {', '.join(SPLITS)}")
    if methods and True in a.get("targeted", [False, True]):
        names = config["data"]["class_names"]
        for task in TASKS:
            spec = _target_spec(a, task)
            if config["data"]["format"] != "kaggle":
                build_target(task, spec, names)
    return methods


def _target_spec(a: dict[str, Any], task: str) -> str:
    spec = (a.get("targets") or {}).get(task)
    if not spec:
        raise ConfigError(f"targeted attacks need attacks.targets.{task} in config/config.yaml")
    return str(spec)


def make_goal(settings: AttackSettings, targeted: bool, class_names: list[str]) -> Goal:
    if not targeted:
        return Goal(settings.task, False)
    return Goal(settings.task, True, build_target(settings.task, settings.target, class_names))
