# Config checks -> grid lists, target paths, shared resources and every final target of the
# study. Logic beyond that belongs in src/vocflow/.
import re
from pathlib import Path

from snakemake.utils import validate

from vocflow.artifacts import BASELINE_LOSS, BASELINE_MODEL, TASKS
from vocflow.attack_config import check_attacks
from vocflow.config import check_config
from vocflow.data.sources import split_inputs
from vocflow.grid import check_grid
from vocflow.logs import user_errors

SCHEMA = f"{workflow.basedir}/workflow/schemas/config.schema.yaml"
# `--config partial=true` arrives as the string "true"; the schema then checks a boolean.
if str(config.get("partial")).lower() in ("true", "false"):
    config["partial"] = str(config["partial"]).lower() == "true"
# Every config mistake stops the workflow here, before any job: one line per problem.
with user_errors():
    check_config(config, SCHEMA)
    check_grid(config)
    ATTACK_METHODS = check_attacks(config)  # [] when the config runs no attacks
validate(config, SCHEMA)  # Snakemake's own check passes now; it fills schema defaults

DATA = config["data"]
ROOT = DATA["root"]
FOLDS = list(range(config["folds"]))
POST = config["post"]
SHARDS = list(range(POST["shards"]))
CRF = POST["crf"]
ENV = "../envs/vocflow.yaml"
PREDICT = config["predict"]
# How test prediction uses refits of the selected recipe (vocflow.ablation.REFIT_MODES).
REFIT_MODE = (
    ("with_folds" if PREDICT.get("refit_with_folds", True) else "alone")
    if PREDICT.get("refit")
    else "off"
)
REFIT_SEEDS = list(range(PREDICT.get("refit_seeds", 1))) if REFIT_MODE != "off" else []
CACHE_FILES = ["index.csv", "images.npy", "masks.npy", "orig_images.npy", "orig_masks.npy"]
# Partial mode (`--config partial=true`): build the leaderboard, selection, report and submission
# from the cells that finished, listing the others as failed; nothing is trained. A normal run
# needs every cell and refuses to select from an incomplete grid.
PARTIAL = bool(config.get("partial"))
CELL_OUTPUTS = ["best.pt", "metrics.csv", "oof.npz"]


def alternation(names):
    return "|".join(re.escape(n) for n in names)


def cache(split):
    return [f"results/data/{split}/{name}" for name in CACHE_FILES]


def grid_cells(task):
    """(model, loss) pairs of the configured grid of ``task``."""
    return [(m, l) for m in config[task]["models"] for l in config[task]["losses"]]


def cell_dir(task, model, loss, fold):
    return f"results/{task}/{model}/{loss}/fold{fold}"


def finished(task, model, loss):
    """Every fold of the cell has all its outputs (partial mode reads only those)."""
    return all(
        Path(cell_dir(task, model, loss, k), name).is_file() for k in FOLDS for name in CELL_OUTPUTS
    )


def cells(task):
    """(model, loss) pairs the study reads: the whole grid, or in partial mode the finished
    cells only."""
    return [c for c in grid_cells(task) if not PARTIAL or finished(task, *c)]


def cell_files(task, name, with_baseline=False):
    """``name`` of every fold of every cell of ``task`` the study reads (and of the baseline)."""
    pairs = cells(task) + ([(BASELINE_MODEL, BASELINE_LOSS)] if with_baseline else [])
    return [f"{cell_dir(task, m, l, k)}/{name}" for m, l in pairs for k in FOLDS]


def missing_cells():
    """Partial mode: every fold of every unfinished cell, with its training log, for the
    leaderboard's failed rows ([] in a normal run)."""
    return [
        {
            "task": t,
            "model": m,
            "loss": l,
            "fold": k,
            "log": f"results/logs/train/{t}/{m}/{l}/fold{k}.log",
        }
        for t in TASKS
        for m, l in grid_cells(t)
        if PARTIAL and not finished(t, m, l)
        for k in FOLDS
        if not all(Path(cell_dir(t, m, l, k), n).is_file() for n in CELL_OUTPUTS)
    ]


def ingest_inputs(w):
    """The split's csv or list file; a missing one stops the workflow with one line."""
    with user_errors():
        return split_inputs(
            DATA["format"], ROOT, w.split, DATA.get("test_labels"), DATA.get("voc_lists")
        )


def selected_files(name, *tasks):
    """``name`` (best.pt, oof.npz, metrics.csv) of every fold of the selected cell of
    ``tasks`` (else of the job's task): the select rule links them under
    results/{task}/selected/, so the DAG is known before selection (dry runs show every job)."""
    if tasks:
        return [f"results/{t}/selected/fold{k}/{name}" for t in tasks for k in FOLDS]
    return [f"results/{{task}}/selected/fold{k}/{name}" for k in FOLDS]


def refit_checkpoints(task=None):
    """The refit checkpoints of the selected recipe ([] without refit)."""
    return [f"results/{task or '{task}'}/refit/seed{s}/best.pt" for s in REFIT_SEEDS]


def per_task(**names):
    """Named inputs ``{task}_{key}`` -> ``results/{task}/{file}`` for both tasks."""
    return {f"{t}_{k}": f"results/{t}/{name}" for t in TASKS for k, name in names.items()}


def test_labelled():
    return DATA["format"] == "voc" or bool(DATA.get("test_labels"))


def gpu_resources(stage):
    """One GPU per job (CPU fallback where CUDA is absent), with time and memory growing with
    the attempt, so a retry after TIMEOUT/OUT_OF_MEMORY gets more (the profile's `retries`).
    ``stage``: train (training, refit) or infer (forward passes over many images: test
    prediction, OOF TTA, attacks). Site names (partition, GPU model, account) live in
    profiles/slurm/ only."""
    res = config["resources"]
    return {
        "gpu": 1,
        "cpus_per_gpu": res[f"{stage}_threads"],
        "mem_mb": lambda w, attempt: res[f"{stage}_mem_mb"] * attempt,
        "runtime": lambda w, attempt: res[f"{stage}_runtime"] * attempt,
        # Inference steps share one GPU job (their group): the slurm profile's gpu_slot=1 makes
        # Snakemake run them one after another in it, and size that job for one GPU.
        **({"gpu_slot": 1} if stage == "infer" else {}),
    }


def cpu_resources():
    """The CPU work of the post-processing (DenseCRF shards, ablation, submission): threads for
    the shards, time and memory growing with the attempt. One cpu_slot each: the slurm profile
    caps the slots, i.e. the steps a group job runs at once and the CPUs it asks for."""
    res = config["resources"]
    return {
        "cpu_slot": 1,
        "mem_mb": lambda w, attempt: res["cpu_mem_mb"] * attempt,
        "runtime": lambda w, attempt: res["cpu_runtime"] * attempt,
    }


def final_targets():
    """Every file the study ends with; optional stages add theirs when the config enables them."""
    targets = [
        "results/leaderboard.csv",
        *[
            f"results/{task}/{name}"
            for task in TASKS
            for name in ("selected.yaml", "thresholds.yaml", "threshold_curves.csv")
        ],
        "results/segmentation/crf.yaml",
        "results/classification/class_report.csv",
        "results/ablation.csv",
        "results/oof_score.yaml",
        "results/submission.csv",
        "results/report/index.html",
    ]
    if test_labelled():
        targets.append("results/score.yaml")
    targets += expand("results/{task}/refit/seed{seed}/best.pt", task=TASKS, seed=REFIT_SEEDS)
    if ATTACK_METHODS:
        targets += ["results/attacks/summary.csv", "results/attacks/success_vs_eps.png"]
        targets += expand(
            "results/attacks/panels/{task}_{method}.png", task=TASKS, method=ATTACK_METHODS
        )
    return targets


wildcard_constraints:
    task=alternation(TASKS),
    split="train|test",
    fold=r"\d+",
    seed=r"\d+",
    shard=r"\d+",
