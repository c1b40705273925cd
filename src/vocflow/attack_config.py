"""The config's ``attacks`` section without torch: its check at workflow parse time, target specs,
and the settings of one attack job.

The Snakefile imports this while it is parsed, so nothing here may import torch (the attacks
themselves live in vocflow.attacks; their names in vocflow.catalog).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from vocflow.artifacts import TASKS
from vocflow.catalog import TRAINED_ATTACKS, attack_names
from vocflow.config import from_fields
from vocflow.errors import ConfigError

SPLITS = ("validation", "test")
TARGET_FORMS = {
    "classification": ("only:CLASS", "add:CLASS", "none"),
    "segmentation": ("background", "erase:CLASS|largest", "paint:CLASS|largest:CLASS"),
}


@dataclass(frozen=True)
class AttackSettings:
    """Everything one attack job (one task × one method) needs besides its files."""

    task: str
    method: str
    epsilons: list[float]
    targeted: list[bool] = field(default_factory=lambda: [False, True])
    target: str = ""  # target spec (TARGET_FORMS)
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


def attack_settings(config: dict[str, Any], task: str, method: str) -> dict[str, Any]:
    """Settings of one attack job from the validated config, as a plain (YAML-stable) dict.

    Only what this job uses goes in, so editing e.g. the generator's settings re-runs only the
    generator jobs (Snakemake tracks params changes).
    """
    a = config["attacks"]
    trains = method in TRAINED_ATTACKS
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
        if method not in attack_names():
            raise ConfigError(f"attacks.methods: unknown attack '{method}'; valid: "
                              f"{', '.join(attack_names())}")
    if methods and a.get("split", "validation") not in SPLITS:
        raise ConfigError(f"attacks.split '{a['split']}' is unknown; valid: {', '.join(SPLITS)}")
    if methods and True in a.get("targeted", [False, True]):
        names = config["data"]["class_names"]
        for task in TASKS:
            spec = _target_spec(a, task)
            if config["data"]["format"] != "kaggle":
                parse_target(task, spec, names)
    return methods


def _target_spec(a: dict[str, Any], task: str) -> str:
    spec = (a.get("targets") or {}).get(task)
    if not spec:
        raise ConfigError(f"targeted attacks need attacks.targets.{task} in config/config.yaml")
    return str(spec)


@dataclass(frozen=True)
class Target:
    """A parsed target spec (vocflow.attacks.objectives.build_target makes it a rule).

    ``kind``: only, add, none (classification); background, erase, paint (segmentation).
    ``dest``: the class column set (only, add) or the label pixels become (erase: 0);
    ``source``: the label relabelled (erase, paint), None = each image's largest object.
    """

    kind: str
    dest: int = 0
    source: int | None = None


def parse_target(task: str, spec: str, class_names: Sequence[str]) -> Target:
    """Parse a target spec of config ``attacks.targets`` (forms in ``TARGET_FORMS``).

    Segmentation labels are 1 + the class's column (0 is background), as in vocflow.metrics.
    """
    kind, *args = spec.split(":")
    forms = f"valid forms: {', '.join(TARGET_FORMS[task])}"
    if task == "classification" and kind in ("only", "add") and len(args) == 1:
        return Target(kind, dest=_class_index(args[0], class_names, 0))
    if task == "classification" and kind == "none" and not args:
        return Target(kind)
    if task == "segmentation" and kind == "background" and not args:
        return Target(kind)
    if task == "segmentation" and kind in ("erase", "paint") and len(args) == (kind == "paint") + 1:
        source = None if args[0] == "largest" else _class_index(args[0], class_names, 1)
        dest = 0 if kind == "erase" else _class_index(args[1], class_names, 1)
        return Target(kind, dest=dest, source=source)
    raise ConfigError(f"bad {task} attack target '{spec}' in attacks.targets; {forms}")


def _class_index(name: str, class_names: Sequence[str], offset: int) -> int:
    if name not in class_names:
        raise ConfigError(f"attack target class '{name}' is unknown; valid: "
                          f"{', '.join(class_names)}")
    return list(class_names).index(name) + offset
