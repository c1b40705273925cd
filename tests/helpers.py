"""Helpers shared by the end-to-end tests: a copy of the workflow with an edited config, and a
snakemake runner that cannot hang (SIGINT at the deadline, SIGKILL 30 s later)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COPIED = ("Snakefile", "workflow", "config", "profiles")


def copy_workflow(dest: Path, edit: Callable[[dict], None] | None = None) -> Path:
    """Copy the workflow into ``dest`` and apply ``edit`` to its config."""
    for name in COPIED:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    config = yaml.safe_load((dest / "config/config.yaml").read_text())
    if edit:
        edit(config)
    (dest / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def tiny_grid(config: dict) -> None:
    """2 models × 2 losses × 2 folds per task, 1 epoch on 24 images of 32 px."""
    config["folds"] = 2
    config["data"]["image_size"] = 32
    config["synthetic"].update(n_train=24, n_test=6, min_side=40, max_side=60)
    config["classification"].update(models=["cnn", "cnn_small"], losses=["bce", "focal"])
    config["segmentation"].update(models=["unet", "unet_small"], losses=["ce", "ce_dice"])
    config["variants"]["cnn"].update(widths=[8, 16], dense=16)
    config["variants"]["cnn_small"] = {"arch": "cnn", "widths": [4, 8], "dense": 8}
    config["variants"]["unet"].update(base_width=4, levels=2)
    config["variants"]["unet_small"] = {"arch": "unet", "base_width": 4, "levels": 1}
    for task in ("classification", "segmentation"):
        config[task]["train"].update(epochs=1, batch_size=8)
    config["resources"].update(train_mem_mb=1000)


def run_snakemake(workdir: Path, *args: str, timeout: int = 600,
                  env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """``snakemake ARGS`` in ``workdir`` under `timeout -s INT -k 30` (SIGTERM may not stop it)."""
    cmd = ["timeout", "-s", "INT", "-k", "30", str(timeout),
           sys.executable, "-m", "snakemake", *args]
    full_env = {**(os.environ if env is None else env), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=full_env,
                          timeout=timeout + 60)


def job_counts(text: str) -> dict[str, int]:
    """Rule -> job count from the "Job stats" table of a (dry) run."""
    rows = (line.split() for line in text.splitlines())
    return {r[0]: int(r[1]) for r in rows if len(r) == 2 and r[1].isdigit()}
