"""What vocflow's own code adds to a dry run of a 1,000-cell grid: `snakemake -n` of the workflow
vs a bare generated Snakefile with the same rules and job counts and no imports.

The grid: 20 segmentation variants (14 unet, 6 lite0_seg, 3 of them ImageNet-pretrained) × 10
losses (the 6 registry losses and 4 ``loss_params`` variants of them) × 5 folds = 1,000
segmentation cells, beside the shipped config's classification grid (cnn × bce × 5 folds) and
everything else of config/config.yaml. Every SLURM job starts its own Snakemake and parses the
workflow, so this is also what each job pays before its work starts.

The baseline has the core shapes written out (ingest per split, folds, one training rule per
task over model × loss × fold with the same three outputs and log, the random baseline per
task × fold, leaderboard over every cell, select per task); every other rule of the workflow's
dry run becomes a rule of the same name with the same job count downstream of select. Its job
table must equal the workflow's, rule by rule. No params, resources or input functions: what a
hand-written Snakefile needs for these jobs and nothing more.

Each side runs 3 times, alternating, in its own temporary directory; the wall-clock medians are
compared (CPU time of the runs is printed too: other processes on the machine inflate wall
time). Run: .venv/bin/python bench/dryrun.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
COPIED = ("Snakefile", "workflow", "config", "profiles")
REPEATS = 3
FOLDS = 5
CACHE_FILES = ["index.csv", "images.npy", "masks.npy", "orig_images.npy", "orig_masks.npy"]
LOSS_VARIANTS = {"focal_g1": {"loss": "focal", "gamma": 1.0},
                 "focal_g3": {"loss": "focal", "gamma": 3.0},
                 "dice_s01": {"loss": "dice", "smooth": 0.1},
                 "ce_dice_a3": {"loss": "ce_dice", "alpha": 0.3}}
SEG_LOSSES = ["ce", "dice", "ce_dice", "lovasz", "focal", "wce", *LOSS_VARIANTS]
# Rules whose shapes the baseline writes out; every other rule is generic.
CORE = {"ingest", "folds", "baseline", "leaderboard", "select", "all"}


def segmentation_variants() -> dict[str, dict[str, Any]]:
    variants: dict[str, dict[str, Any]] = {}
    for i in range(14):
        variants[f"unet_v{i:02d}"] = {"arch": "unet", "base_width": 4 + 2 * i,
                                      "levels": 3 + i % 2, "dropout": 0.1 * (i % 3)}
    for i in range(6):
        variants[f"lite0_v{i:02d}"] = {"arch": "lite0_seg", "decoder_width": 32 + 16 * i,
                                       "pretrained": i % 2 == 0}
    return variants


def grid_config(path: Path) -> dict[str, Any]:
    """The shipped config with the 1,000-cell segmentation grid; written back to ``path``."""
    config = yaml.safe_load(path.read_text())
    variants = segmentation_variants()
    config["folds"] = FOLDS
    config["variants"] = {**(config.get("variants") or {}), **variants}
    config["loss_params"] = {**(config.get("loss_params") or {}), **LOSS_VARIANTS}
    config["segmentation"]["models"] = list(variants)
    config["segmentation"]["losses"] = SEG_LOSSES
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def rule_block(kind: str, name: str, **directives: str) -> str:
    body = "".join(f"    {key}:\n        {value}\n" for key, value in directives.items())
    return f"{kind} {name}:\n{body}\n"


def baseline_snakefile(config: dict[str, Any], counts: dict[str, int]) -> str:
    """A bare Snakefile with the core job shapes of the workflow and ``counts``' other rules."""
    tasks = ["classification", "segmentation"]
    folds = list(range(config["folds"]))
    cache = {s: [f"results/data/{s}/{n}" for n in CACHE_FILES] for s in ("train", "test")}
    cells = {t: [f"results/{t}/{m}/{loss}/fold{k}" for m in config[t]["models"]
                 for loss in config[t]["losses"] for k in folds] for t in tasks}
    random = [f"results/baselines/{t}/fold{k}" for t in tasks for k in folds]
    selected = [f"results/{t}/selected.yaml" for t in tasks]
    others = {name: n for name, n in counts.items()
              if name not in CORE and not name.startswith("train_")}
    generic = [f"results/after/{name}/{i}.txt" for name, n in others.items() for i in range(n)]
    text = "# Bare baseline of bench/dryrun.py: no imports, no functions.\n\n"
    text += rule_block("rule", "all", input=repr(["results/leaderboard.csv", *selected,
                                                  *cache["test"], *generic]))
    text += rule_block("rule", "ingest",
                       output=repr([f.replace("/train/", "/{split}/") for f in cache["train"]]),
                       log=repr("results/logs/ingest/{split}.log"))
    text += rule_block("rule", "folds", input=repr(cache["train"]),
                       output=repr("results/data/folds.csv"))
    for task in tasks:
        cell = f"results/{task}/{{model}}/{{loss}}/fold{{fold}}"
        text += rule_block("rule", f"train_{task}",
                           input=repr([*cache["train"], "results/data/folds.csv"]),
                           output=repr([f"{cell}/best.pt", f"{cell}/metrics.csv",
                                        f"{cell}/oof.npz"]),
                           log=repr(f"results/logs/train/{task}/{{model}}/{{loss}}/"
                                    f"fold{{fold}}.log"))
    text += rule_block("rule", "baseline",
                       input=repr([*cache["train"], "results/data/folds.csv"]),
                       output=repr(["results/baselines/{task}/fold{fold}/metrics.csv",
                                    "results/baselines/{task}/fold{fold}/oof.npz"]))
    text += rule_block("rule", "leaderboard",
                       input=repr([f"{c}/metrics.csv" for t in tasks for c in cells[t]]
                                  + [f"{c}/metrics.csv" for c in random]),
                       output=repr("results/leaderboard.csv"))
    text += rule_block("rule", "select", input=repr("results/leaderboard.csv"),
                       output=repr("results/{task}/selected.yaml"))
    for name in others:
        text += rule_block("rule", name, input=repr(selected),
                           output=repr(f"results/after/{name}/{{i}}.txt"))
    return text


def job_counts(text: str) -> dict[str, int]:
    """Rule -> job count (and "total") from the first "Job stats" table of a dry run, the
    ``all`` rule left out."""
    lines = text.split("Job stats:", 1)[-1].splitlines()
    counts: dict[str, int] = {}
    for row in (line.split() for line in lines):
        # The target rule's row may come after "total" (Snakemake's table order): left out.
        if len(row) == 2 and row[1].isdigit() and row[0] != "all":
            counts[row[0]] = int(row[1])
            if row[0] == "total":
                break
    return counts


def dry_run(workdir: Path) -> tuple[float, float, dict[str, int]]:
    """(wall seconds, CPU seconds, job counts) of `snakemake -n --quiet rules` in ``workdir``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--quiet", "rules"],
                          cwd=workdir, capture_output=True, text=True,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"dry run in {workdir} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, job_counts(done.stdout + done.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="work here and keep the files")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="vocflow-dryrun-"))
    ours_dir, bare_dir = base / "vocflow", base / "baseline"
    for d in (ours_dir, bare_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    try:
        for name in COPIED:
            src = REPO / name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, ours_dir / name)
        config = grid_config(ours_dir / "config" / "config.yaml")
        ours: list[tuple[float, float]] = []
        bare: list[tuple[float, float]] = []
        for i in range(REPEATS):
            wall, cpu, counts = dry_run(ours_dir)
            ours.append((wall, cpu))
            if i == 0:
                cells = counts.get("train_segmentation", 0)
                print(f"workflow: {counts.get('total')} jobs, {cells} segmentation cells")
                (bare_dir / "Snakefile").write_text(baseline_snakefile(config, counts))
            wall, cpu, bare_counts = dry_run(bare_dir)
            bare.append((wall, cpu))
            if bare_counts != counts:
                sys.exit(f"the baseline's jobs differ: {bare_counts} vs {counts}")
            print(f"run {i + 1}: ours {ours[-1][0]:.2f} s (cpu {ours[-1][1]:.2f} s), "
                  f"baseline {wall:.2f} s (cpu {cpu:.2f} s)")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    ours_s = statistics.median(w for w, _ in ours)
    bare_s = statistics.median(w for w, _ in bare)
    print(f"cpu medians: ours {statistics.median(c for _, c in ours):.2f} s, "
          f"baseline {statistics.median(c for _, c in bare):.2f} s")
    print(f"dryrun: ours {ours_s:.2f} s, baseline {bare_s:.2f} s, ratio {ours_s / bare_s:.2f}")


if __name__ == "__main__":
    main()
