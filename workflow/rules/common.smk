# Config -> grid lists and target paths. Logic beyond that belongs in src/vocflow/.
import re

from vocflow.config import BASELINE_LOSS, BASELINE_MODEL, TASKS, check_grid

check_grid(config)

DATA = config["data"]
FOLDS = list(range(config["folds"]))
ENV = "../envs/vocflow.yaml"
CACHE_FILES = ["index.csv", "images.npy", "masks.npy", "orig_images.npy", "orig_masks.npy"]


def cells(task):
    """(model, loss) pairs of the trained grid of ``task``."""
    return [(m, l) for m in config[task]["models"] for l in config[task]["losses"]]


def cell_files(task, name, with_baseline=False):
    pairs = cells(task) + ([(BASELINE_MODEL, BASELINE_LOSS)] if with_baseline else [])
    return [f"results/{task}/{m}/{l}/fold{k}/{name}" for m, l in pairs for k in FOLDS]


def cache(split):
    return [f"results/data/{split}/{name}" for name in CACHE_FILES]


def alternation(names):
    return "|".join(re.escape(n) for n in names)


def test_labelled():
    return DATA["format"] == "voc" or bool(DATA.get("test_labels"))


# Stage files append their final outputs here (rule all is evaluated after every include).
EXTRA_TARGETS = []


def final_targets():
    targets = ["results/leaderboard.csv", "results/submission.csv", "results/report/index.html"]
    targets += [f"results/{task}/selected.yaml" for task in TASKS]
    targets += ["results/score.yaml"] if test_labelled() else []
    return targets + EXTRA_TARGETS


wildcard_constraints:
    task=alternation(TASKS),
    split="train|test",
    fold=r"\d+",
