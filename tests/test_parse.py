"""Parsing the Snakefile imports no torch: what the rule files import from vocflow loads none of
the heavy libraries (every SLURM job starts its own Snakemake and would pay for them), and the
torch-free name lists those checks use are the real registries' names."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from torchvision.models import get_weight

from vocflow import attack_config, catalog, pretrained
from vocflow.attacks import ATTACKS
from vocflow.data.formats import FORMATS
from vocflow.data.transforms import PRESETS
from vocflow.evaluation import TASK_METRICS
from vocflow.optim import OPTIMIZERS, SCHEDULES
from vocflow.postprocess import RECONCILE
from vocflow.thresholds import OBJECTIVES

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "albumentations", "timm", "segmentation_models_pytorch", "cv2",
         "pydensecrf", "matplotlib")
# `from vocflow... import a, b` or `from vocflow... import (a,\n b)` or `import vocflow...`
VOCFLOW_IMPORT = re.compile(r"^[ \t]*((?:from vocflow[\w.]* import (?:\([^)]*\)|[^\n]*))"
                            r"|(?:import vocflow[^\n]*))", re.MULTILINE)


def snakefile_imports() -> list[str]:
    """Every vocflow import statement of the Snakefile and the rule files, dedented."""
    files = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    return [m.group(1) for f in files for m in VOCFLOW_IMPORT.finditer(f.read_text())]


def heavy_modules_after(statements: list[str]) -> list[str]:
    """The heavy modules a fresh interpreter holds after running ``statements``."""
    probe = "\n".join([*statements, "import json, sys",
                       f"print(json.dumps(sorted(m for m in sys.modules "
                       f"if m.split('.')[0] in {HEAVY!r})))"])
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_rule_files_import_from_vocflow() -> None:
    statements = snakefile_imports()
    assert any("check_grid" in s for s in statements), statements  # the regex finds them


def test_the_snakefile_imports_no_heavy_library() -> None:
    assert heavy_modules_after(snakefile_imports()) == []


def test_the_probe_sees_a_heavy_import() -> None:
    assert "torch" in heavy_modules_after([*snakefile_imports(), "import vocflow.models"])


# ----------------------------------------------------------------------------- names


def schema_enum(*path: str | int) -> list[str]:
    node = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    for key in path:
        node = node[key]
    return node["enum"]


SETTINGS = ("definitions", "train_settings", "properties")


@pytest.mark.parametrize(("torch_free", "real"), [
    pytest.param(catalog.attack_names(), ATTACKS.names(), id="attack methods"),
    pytest.param(schema_enum("properties", "attacks", "properties", "split"),
                 attack_config.SPLITS, id="attacks.split"),
    pytest.param(schema_enum(*SETTINGS, "augment"), list(PRESETS), id="augment"),
    pytest.param(schema_enum(*SETTINGS, "optimizer"), OPTIMIZERS.names(), id="optimizer"),
    pytest.param(schema_enum(*SETTINGS, "schedule"), SCHEDULES.names(), id="schedule"),
    pytest.param(schema_enum("properties", "data", "properties", "format"), FORMATS,
                 id="data.format"),
    pytest.param(schema_enum("properties", "classification", "allOf", 1, "properties",
                             "selection_metric"), TASK_METRICS["classification"],
                 id="classification metrics"),
    pytest.param(schema_enum("properties", "segmentation", "allOf", 1, "properties",
                             "selection_metric"), TASK_METRICS["segmentation"],
                 id="segmentation metrics"),
    pytest.param(schema_enum("properties", "post", "properties", "thresholds", "properties",
                             "objective"), OBJECTIVES.names(), id="threshold objectives"),
    pytest.param(schema_enum("properties", "post", "properties", "reconcile"), RECONCILE.names(),
                 id="reconcile modes"),
])
def test_torch_free_names_are_the_registries(torch_free, real) -> None:
    assert sorted(torch_free) == sorted(real)


def enum_members(enum: str) -> dict[str, str]:
    """torchvision's weights enum ``enum``: every name it accepts (aliases too) -> its member."""
    members = type(get_weight(f"{enum}.DEFAULT")).__members__
    return {name: member.name for name, member in members.items()}


@pytest.mark.parametrize("enum", sorted(pretrained.WEIGHTS_ENUMS))
def test_weights_enums_are_torchvisions(enum: str) -> None:
    default, members = pretrained.WEIGHTS_ENUMS[enum]
    assert enum_members(enum) == {**{m: m for m in members}, "DEFAULT": default}


def candidate_enums(arch: str) -> list[str]:
    """The enums whose members ``pretrained:`` of ``arch`` may name, in lookup order."""
    if arch in pretrained.ENCODER_WEIGHTS:
        return [pretrained.ENCODER_WEIGHTS[arch].split(".")[0]]
    own, backbone = pretrained.TORCHVISION_WEIGHTS[arch]
    return [own] + ([backbone.split(".")[0]] if backbone else [])


def test_every_named_enum_is_listed() -> None:
    named = {e for a in [*pretrained.TORCHVISION_WEIGHTS, *pretrained.ENCODER_WEIGHTS]
             for e in candidate_enums(a)}
    assert named == set(pretrained.WEIGHTS_ENUMS)


@pytest.mark.parametrize("arch", sorted([*pretrained.TORCHVISION_WEIGHTS,
                                         *pretrained.ENCODER_WEIGHTS]))
def test_member_names_resolve_as_torchvision_resolves_them(arch: str) -> None:
    """Every member name (DEFAULT too) of the arch's enums gives the key torchvision's
    get_weight names, the model's own enum first; true gives the ImageNet default."""
    enums = candidate_enums(arch)
    for member in sorted({m for e in enums for m in enum_members(e)}):
        expected = next(str(get_weight(f"{e}.{member}")) for e in enums
                        if member in enum_members(e))
        assert pretrained.weights_key(arch, member) == expected, member
    backbone = pretrained.ENCODER_WEIGHTS.get(arch) or pretrained.TORCHVISION_WEIGHTS[arch][1]
    assert pretrained.weights_key(arch, True) == str(get_weight(backbone or f"{enums[0]}.DEFAULT"))
