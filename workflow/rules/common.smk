# Config checks -> grid lists, target paths, shared resources and every final target of the
# study. Logic beyond that belongs in src/vocflow/.
import re

from snakemake.utils import validate

from vocflow.artifacts import BASELINE_LOSS, BASELINE_MODEL, TASKS, Selection
from vocflow.attacks.registry import check_attacks
from vocflow.config import check_config
from vocflow.data.sources import split_inputs
from vocflow.grid import check_grid
from vocflow.logs import user_errors

SCHEMA = f"{workflow.basedir}/workflow/schemas/config.schema.yaml"
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


def alternation(names):
    return "|".join(re.escape(n) for n in names)


def cache(split):
    return [f"results/data/{split}/{name}" for name in CACHE_FILES]


def cells(task):
    """(model, loss) pairs of the trained grid of ``task``."""
    return [(m, l) for m in config[task]["models"] for l in config[task]["losses"]]


def cell_files(task, name, with_baseline=False):
    """``name`` of every fold of every cell of ``task`` (and of the baseline)."""
    pairs = cells(task) + ([(BASELINE_MODEL, BASELINE_LOSS)] if with_baseline else [])
    return [f"results/{task}/{m}/{l}/fold{k}/{name}" for m, l in pairs for k in FOLDS]


def ingest_inputs(w):
    """The split's csv or list file; a missing one stops the workflow with one line."""
    with user_errors():
        return split_inputs(
            DATA["format"], ROOT, w.split, DATA.get("test_labels"), DATA.get("voc_lists")
        )


def selected(task):
    """The selected cell of ``task``: known once the select checkpoint has run, after which
    Snakemake re-evaluates the rules that depend on it."""
    path = checkpoints.select.get(task=task).output[0]
    with user_errors():  # an unreadable selected.yaml: its one line, no traceback
        return Selection.read(path)


def selected_checkpoints(task=None):
    """Input function: the fold checkpoints of the selected cell (of ``task``, else the job's)."""
    return lambda w: selected(task or w.task).checkpoints


def selected_oof(*tasks):
    """Input function: the OOF files of the selected cells (of ``tasks``, else the job's)."""
    return lambda w: [f for t in (tasks or [w.task]) for f in selected(t).oof]


def selected_metrics(w):
    """Input function: the metrics.csv of every fold of the job's selected cell (their best
    epochs set a refit's epoch count)."""
    sel = selected(w.task)
    return [f"results/{w.task}/{sel.model}/{sel.loss}/fold{k}/metrics.csv" for k in FOLDS]


def refit_checkpoints(task=None):
    """Input function: the refit checkpoints of the selected recipe ([] without refit)."""
    return lambda w: [f"results/{task or w.task}/refit/seed{s}/best.pt" for s in REFIT_SEEDS]


def per_task(**names):
    """Named inputs ``{task}_{key}`` -> ``results/{task}/{file}`` for both tasks."""
    return {f"{t}_{k}": f"results/{t}/{name}" for t in TASKS for k, name in names.items()}


def test_labelled():
    return DATA["format"] == "voc" or bool(DATA.get("test_labels"))


def gpu_resources():
    """One GPU per job (CPU fallback where CUDA is absent), with time and memory growing with
    the attempt, so a retry after TIMEOUT/OUT_OF_MEMORY gets more (the profile's `retries`).
    Site names (partition, GPU model, account) live in profiles/slurm/ only."""
    res = config["resources"]
    return {
        "gpu": 1,
        "cpus_per_gpu": res["train_threads"],
        "mem_mb": lambda w, attempt: res["train_mem_mb"] * attempt,
        "runtime": lambda w, attempt: res["train_runtime"] * attempt,
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
