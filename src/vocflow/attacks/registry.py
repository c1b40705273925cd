"""Attack names of config ``attacks.methods`` -> constructors.

Every attack works on both tasks; a builder takes the whole ``AttackSettings`` and reads what it
needs (PGD its steps, the generators their training settings). The names are
vocflow.catalog.ATTACK_METHODS; the config check and the job settings are torch-free, in
vocflow.attack_config (the Snakefile imports them while it is parsed).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn

from vocflow.attack_config import (  # noqa: F401  (re-exported: vocflow.attacks, tests)
    SPLITS,
    AttackSettings,
    attack_settings,
    check_attacks,
)
from vocflow.attacks.generator import GeneratorAttack
from vocflow.attacks.gradient import FGSM, PGD, Objective
from vocflow.attacks.objectives import Goal, build_target
from vocflow.registry import Registry


class Attack(Protocol):
    norm: str
    trains: bool  # True: ``fit`` must run before attacking (the generators)

    def __call__(self, model: nn.Module, x: torch.Tensor, objective: Objective,
                 eps: float) -> torch.Tensor: ...


ATTACKS: Registry[Attack] = Registry("attack")


def _pgd_params(s: AttackSettings) -> dict[str, Any]:
    return {**s.pgd, "seed": s.seed}


def _generator_params(s: AttackSettings) -> dict[str, Any]:
    return {**s.generator, "seed": s.seed}


# name (vocflow.catalog.ATTACK_METHODS) -> builder from the job's settings; gradient attacks
# by norm, generators by kind.
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


def make_goal(settings: AttackSettings, targeted: bool, class_names: list[str]) -> Goal:
    if not targeted:
        return Goal(settings.task, False)
    return Goal(settings.task, True, build_target(settings.task, settings.target, class_names))
