"""Helpers shared by the tests: tiny training cells, a copy of the workflow with an edited
config, and a snakemake runner that cannot hang (SIGINT at the deadline, SIGKILL 30 s later)."""

from __future__ import annotations

import importlib
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from snakemake.utils import update_config

from vocflow.artifacts import Selection
from vocflow.grid import TrainSettings
from vocflow.train import train_cell

REPO = Path(__file__).resolve().parents[1]
COPIED = ("Snakefile", "workflow", "config", "profiles")
TEST_CONFIG = REPO / ".test" / "config"


# The smallest models of each task, for tests that need trained cells.
TINY_MODELS = {
    "classification": {"arch": "cnn", "loss": "bce", "model_params": {"widths": [8, 16],
                                                                       "dense": 16}},
    "segmentation": {"arch": "unet", "loss": "ce", "model_params": {"base_width": 4, "levels": 2}},
}


def train_tiny(data: Mapping[str, Path], task: str, out: Path, fold: int = 0,
               run: Mapping[str, Any] | None = None, **settings: Any) -> dict[str, Path]:
    """Train a tiny cell of ``task`` on the ``tiny_data`` fixture's fold ``fold`` into
    ``out/{best.pt, metrics.csv, oof.npz}``; ``settings`` override TINY_MODELS and one epoch of
    batch 8 at lr 3e-3; ``run`` passes extra keywords to train_cell (state_dir, callback...)."""
    spec = {**TINY_MODELS[task], "epochs": 1, "batch_size": 8, "lr": 3e-3, **settings}
    model = spec.pop("model", spec["arch"])
    paths = {"checkpoint": out / "best.pt", "metrics": out / "metrics.csv",
             "oof": out / "oof.npz"}
    train_cell(cache_dir=data["train"], folds_csv=data["folds"], fold=fold,
               settings=TrainSettings(task=task, model=model, **spec).to_dict(),
               checkpoint_path=paths["checkpoint"], metrics_path=paths["metrics"],
               oof_path=paths["oof"], **(run or {}))
    return paths


def write_selection(path: Path, task: str, folds: list[Mapping[str, Path]], model: str = "m",
                    loss: str = "l") -> Path:
    """A selected.yaml naming the checkpoints and OOF files of ``folds`` (train_tiny outputs)."""
    Selection(task=task, model=model, loss=loss, metric="kaggle", mean=0.0, std=0.0,
              checkpoints=[str(f["checkpoint"]) for f in folds],
              oof=[str(f["oof"]) for f in folds]).write(path)
    return path


def copy_workflow(dest: Path, *overlays: str) -> Path:
    """Copy the workflow into ``dest``; its config is config/config.yaml with the named files of
    .test/config/ merged over it in order, as ``snakemake --configfile`` merges them."""
    for name in COPIED:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return merge_config(dest, *overlays)


def merge_config(workdir: Path, *overlays: str) -> Path:
    """Merge .test/config/{overlay}.yaml files over ``workdir``'s config/config.yaml; an
    overlay named ``config/NAME`` is the shipped config/NAME.yaml (e.g. config/camvid)."""
    path = workdir / "config/config.yaml"
    config = yaml.safe_load(path.read_text())
    for name in overlays:
        file = REPO / f"{name}.yaml" if name.startswith("config/") else TEST_CONFIG / f"{name}.yaml"
        update_config(config, yaml.safe_load(file.read_text()))
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return workdir


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


# ----------------------------------------------------------------------------- forked runs

# What the Snakefile imports: a child forked after these imports parses it in a fraction of a
# second instead of importing them again (seconds each run, on a 2-core machine the bulk).
SNAKEFILE_IMPORTS = ("snakemake.cli", "snakemake.api", "snakemake.utils", "vocflow.grid",
                     "vocflow.attack_config", "vocflow.config", "vocflow.logs",
                     "vocflow.artifacts", "vocflow.data.sources", "vocflow.report.sources")


def run_snakemake_many(runs: Sequence[tuple[Path, Sequence[str], Path]], parallel: int = 2,
                       timeout: float = 600) -> list[int]:
    """``snakemake ARGS`` in each ``(workdir, args, output file)``: a real Snakemake run in a
    child process forked from this one after SNAKEFILE_IMPORTS, its stdout and stderr (and its
    jobs') written to the output file; at most ``parallel`` at once. Returns the exit codes.

    Forks happen from the calling thread only, with no other thread of ours running. A run past
    ``timeout`` seconds gets SIGINT, then SIGKILL 30 s later.
    """
    for name in SNAKEFILE_IMPORTS:
        importlib.import_module(name)
    codes: dict[int, int] = {}
    running: dict[int, tuple[int, float]] = {}  # pid -> (run index, start)
    pending = list(range(len(runs)))
    while pending or running:
        while pending and len(running) < parallel:
            i = pending.pop(0)
            running[_fork_snakemake(*runs[i])] = (i, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid in running:
            codes[running.pop(pid)[0]] = os.waitstatus_to_exitcode(status)
            continue
        for pid, (_, start) in running.items():
            late = time.monotonic() - start - timeout
            if late > 0:
                os.killpg(pid, signal.SIGKILL if late > 30 else signal.SIGINT)
        time.sleep(0.05)
    return [codes[i] for i in range(len(runs))]


def _fork_snakemake(workdir: Path, args: Sequence[str], output: Path) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the child: never returns into the caller
        os.setpgid(0, 0)
        os.chdir(workdir)
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        sys.argv = ["snakemake", *args]
        try:
            sys.modules["snakemake.cli"].main(list(args))
            code = 0
        except SystemExit as exc:  # as the interpreter would: a message is printed, exit 1
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
        except BaseException as exc:  # noqa: BLE001 - report, never return into pytest
            traceback.print_exception(exc)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
