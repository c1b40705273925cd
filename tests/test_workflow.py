"""The whole workflow, end to end, on tiny configs — as a user runs it: on a dataset in the
Kaggle layout whose test split is unlabelled (the real competition's case), and on real street
photos in the VOC devkit layout (../shared/data/camvid_dev with config/camvid.yaml)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import REPO, copy_workflow, job_counts, merge_config, run_snakemake
from PIL import Image

from vocflow import cli
from vocflow.ablation import STEPS
from vocflow.data.cache import load_cache
from vocflow.data.synthetic import make_synthetic
from vocflow.rle import read_submission, rle_decode, score_submission

pytestmark = pytest.mark.workflow


MODELS = {"classification": ["cnn", "lite0"], "segmentation": ["unet", "lite0_fpn"]}
LOSSES = {"classification": ["bce", "focal"], "segmentation": ["ce", "wce"]}
TASKS = ("classification", "segmentation")
CAMVID = REPO.parent / "shared" / "data" / "camvid_dev"
CAMVID_CLASSES = 10


def snakemake(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return run_snakemake(workdir, "--profile", "profiles/local", *args, timeout=timeout)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny study on a Kaggle-layout dataset with an unlabelled test split."""
    workdir = copy_workflow(tmp_path_factory.mktemp("wf"), "config", "kaggle_unlabelled")
    make_synthetic(workdir / "kaggle_data", n_train=24, n_test=6, min_side=40, max_side=60)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


@pytest.fixture(scope="module")
def camvid_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """config/camvid.yaml at test size on the real photos, VOC devkit layout."""
    if not (CAMVID / "ImageSets").is_dir():
        pytest.skip(f"{CAMVID} is not here (a copy of shared/ beside the repository)")
    workdir = copy_workflow(tmp_path_factory.mktemp("camvid"), "config/camvid", "camvid_tiny")
    (workdir / "camvid_dev").symlink_to(CAMVID)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_every_output_exists(finished_run: Path) -> None:
    r = finished_run / "results"
    for task in TASKS:
        for model in MODELS[task]:
            for loss in LOSSES[task]:
                for k in (0, 1):
                    cell = r / task / model / loss / f"fold{k}"
                    for name in ("best.pt", "metrics.csv", "oof.npz"):
                        assert (cell / name).is_file(), cell / name
                    assert (r / "logs/train" / task / model / loss / f"fold{k}.log").is_file()
                    assert (r / "benchmarks/train" / task / model / loss / f"fold{k}.tsv"
                            ).is_file()
        assert (r / task / "random/prior/fold0/metrics.csv").is_file()
        assert (r / task / "selected.yaml").is_file()
    board = pd.read_csv(r / "leaderboard.csv")
    assert len(board) == 2 * (4 + 1)  # 2 × 2 cells + a random baseline per task
    assert (board["folds"] == 2).all()
    html = (r / "report/index.html").read_text()
    assert "Leaderboard" in html and "data:image/png;base64" in html
    for task in TASKS:
        assert (r / task / "thresholds.yaml").is_file()
    assert (r / "segmentation/crf.yaml").is_file()
    assert list((r / "segmentation/crf_panels").glob("crf_*.png"))
    assert (r / "attacks/summary.csv").is_file() and (r / "attacks/success_vs_eps.png").is_file()


def test_ablation_table_has_every_step(finished_run: Path) -> None:
    r = finished_run / "results"
    ablation = pd.read_csv(r / "ablation.csv")
    assert list(zip(ablation["task"], ablation["step"], strict=True)) == [
        (task, step) for task in TASKS for step in STEPS]
    test_rows = ablation[ablation["eval_set"] == "test"]
    assert test_rows["kaggle"].isna().all()  # unlabelled test split: n/a, with the reason
    assert test_rows["notes"].str.startswith("n/a").all()
    assert "oof_sanity" in yaml.safe_load((r / "oof_score.yaml").read_text())


def test_attack_summary_covers_the_config(finished_run: Path) -> None:
    summary = pd.read_csv(finished_run / "results/attacks/summary.csv")
    assert set(summary["task"]) == set(TASKS)
    assert set(summary["attack"]) == {"fgsm", "pgd", "generator"}
    assert set(summary["epsilon"]) == {2, 8}
    assert (summary["linf"] <= summary["epsilon"] + 1e-3).all()


def test_snakemake_report(finished_run: Path) -> None:
    result = snakemake(finished_run, "--report", "results/report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Study report" in (finished_run / "results/report.html").read_text()


def check_submission(workdir: Path, test_ids: list[str], num_classes: int) -> None:
    """submission.csv has one classification and one segmentation row per test image, in
    order, each a valid RLE of that image's (C,) labels or (C, H, W) mask stack."""
    sub = read_submission(workdir / "results/submission.csv")
    expected = [f"{i}_{kind}" for i in test_ids for kind in ("classification", "segmentation")]
    assert list(sub.columns) == ["Id", "Predicted"] and sub["Id"].tolist() == expected
    cache = load_cache(workdir / "results/data/test")
    for k, (h, w) in enumerate(zip(cache.heights, cache.widths, strict=True)):
        labels = rle_decode(sub["Predicted"].iloc[2 * k], (num_classes,))
        stack = rle_decode(sub["Predicted"].iloc[2 * k + 1], (num_classes, int(h), int(w)))
        assert labels.shape == (num_classes,) and stack.shape == (num_classes, h, w)
        assert stack.sum(axis=0).max() <= 1  # one class per pixel


def test_unlabelled_kaggle_split_still_gets_a_well_formed_submission(finished_run: Path) -> None:
    test_ids = pd.read_csv(finished_run / "kaggle_data/test/test_set.csv", dtype=str)["Id"]
    check_submission(finished_run, test_ids.tolist(), 20)
    assert not (finished_run / "results/score.yaml").exists()  # nothing to score against
    summary = yaml.safe_load((finished_run / "results/test_ensemble.yaml").read_text())
    assert summary["labelled"] is False and summary["images"] == len(test_ids)


def test_second_run_has_nothing_to_do(finished_run: Path) -> None:
    result = snakemake(finished_run, "-n")
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr


def test_adding_a_model_reruns_only_new_cells(finished_run: Path, tmp_path: Path) -> None:
    config_path = finished_run / "config/config.yaml"
    original = config_path.read_text()
    merge_config(finished_run, "more_cells")
    try:
        out = snakemake(finished_run, "-n", "--quiet", "rules")
        assert out.returncode == 0, out.stderr
        text = out.stdout + out.stderr
        counts = job_counts(text)
        assert counts.get("train_segmentation") == 4   # 1 new model × 2 losses × 2 folds
        assert "train_classification" not in counts
    finally:
        config_path.write_text(original)


def test_partial_mode_leaves_unfinished_cells_out(finished_run: Path) -> None:
    config_path = finished_run / "config/config.yaml"
    original = config_path.read_text()
    merge_config(finished_run, "more_cells")  # a new model: 4 cells not trained yet
    try:
        normal = snakemake(finished_run, "-n", "--quiet", "rules")
        partial = snakemake(finished_run, "-n", "--quiet", "rules", "--config", "partial=true")
        assert normal.returncode == 0 and partial.returncode == 0, partial.stderr[-3000:]
        assert job_counts(normal.stdout + normal.stderr).get("train_segmentation") == 4
        counts = job_counts(partial.stdout + partial.stderr)
        assert "train_segmentation" not in counts and "train_classification" not in counts
        assert counts.get("leaderboard") == 1  # its failed rows changed
    finally:
        config_path.write_text(original)


def test_lint_is_clean(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path)
    result = snakemake(workdir, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_large_grid_dry_run(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path, "large_grid")
    start = time.perf_counter()
    result = snakemake(workdir, "-n", "--quiet", "rules")
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout + result.stderr
    counts = job_counts(text)
    assert counts["train_classification"] == 100 and counts["train_segmentation"] == 100
    print(f"dry run of 2 x 5 x 4 x 5 grid: {seconds:.1f} s")


def test_bad_config_fails_before_any_job(tmp_path: Path) -> None:
    workdir = copy_workflow(tmp_path, "misspelled_key")
    result = snakemake(workdir, "-n")
    assert result.returncode != 0
    assert "image_sise" in result.stdout + result.stderr
    assert not (workdir / "results").exists()


# ----------------------------------------------------------------------------- real photos


def test_camvid_voc_devkit_run_scores_the_labelled_val_split(camvid_run: Path) -> None:
    r = camvid_run / "results"
    val = (CAMVID / "ImageSets/Segmentation/val.txt").read_text().split()
    check_submission(camvid_run, val, CAMVID_CLASSES)
    cache = load_cache(r / "data/test")
    masks = [cache.original_mask(i) for i in range(len(cache))]
    scores = score_submission(r / "submission.csv", cache.ids, cache.labels, masks,
                              CAMVID_CLASSES)
    recorded = yaml.safe_load((r / "score.yaml").read_text())
    assert recorded["ours"]["score"] == pytest.approx(scores["score"])
    assert cache.class_names[0] == "building" and "pedestrian" in (r / "report/index.html"
                                                                    ).read_text()


def test_camvid_refit_is_trained_used_and_ablated(camvid_run: Path) -> None:
    r = camvid_run / "results"
    for task in TASKS:
        metrics = pd.read_csv(r / task / "refit/seed0/metrics.csv")
        assert (metrics["fold"] == -1).all() and metrics["is_best"].iloc[-1] == 1
        predictor = yaml.safe_load((r / task / "predictor.yaml").read_text())
        assert f"results/{task}/refit/seed0/best.pt" in predictor["checkpoints"]
        assert len(predictor["checkpoints"]) == 1  # refit_with_folds: false, the refit alone
        assert (r / "benchmarks/refit" / task / "seed0.tsv").is_file()
    ablation = pd.read_csv(r / "ablation.csv").set_index(["task", "step"])
    for task in TASKS:
        row = ablation.loc[(task, "+refit")]
        assert 0 <= row["kaggle"] <= 1 and "fold ensemble" in row["notes"]
    assert 0 <= ablation.loc[("segmentation", "+refit"), "miou"] <= 1
    rows = pd.read_csv(r / "classification/lite0/bce/fold0/metrics.csv")
    assert {"train_auc", "val_auc", "train_map"} <= set(rows.columns)


def test_vocflow_predict_on_new_photos_of_other_sizes(camvid_run: Path, tmp_path: Path) -> None:
    # Three val frames saved as JPEGs at sizes the study never saw.
    images = []
    for k, size in enumerate([(240, 180), (97, 61), (400, 333)]):
        name = (CAMVID / "ImageSets/Segmentation/val.txt").read_text().split()[k]
        with Image.open(CAMVID / "JPEGImages" / f"{name}.jpg") as photo:
            images.append(tmp_path / f"new{k}.jpg")
            photo.convert("RGB").resize(size).save(images[-1])
    out = tmp_path / "out"
    assert cli.main(["predict", *map(str, images), "--out", str(out),
                     "--results", str(camvid_run / "results")]) == 0
    for k, (w, h) in enumerate([(240, 180), (97, 61), (400, 333)]):
        with Image.open(out / "masks" / f"new{k}.png") as mask:
            assert mask.size == (w, h) and np.asarray(mask).max() <= CAMVID_CLASSES
    labels = pd.read_csv(out / "labels.csv")
    assert len(labels) == 3 and {"p_car", "car"} <= set(labels.columns)
