"""The whole workflow, end to end, on a tiny config — as a user runs it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import copy_workflow, job_counts, merge_config, run_snakemake

from vocflow.data.cache import load_cache
from vocflow.rle import score_submission

pytestmark = pytest.mark.workflow


MODELS = {"classification": ["cnn", "lite0"], "segmentation": ["unet", "lite0_fpn"]}
LOSSES = {"classification": ["bce", "focal"], "segmentation": ["ce", "wce"]}
TASKS = ("classification", "segmentation")
ABLATION_STEPS = ["raw", "+thresholds", "+crf", "+tta", "+ensemble"]


def snakemake(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return run_snakemake(workdir, "--profile", "profiles/local", *args, timeout=timeout)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("wf"), "config")
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
        (task, step) for task in TASKS for step in ABLATION_STEPS]
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


def test_submission_format_and_score(finished_run: Path) -> None:
    r = finished_run / "results"
    sub = pd.read_csv(r / "submission.csv", dtype=str, keep_default_na=False)
    test_ids = pd.read_csv(r / "synthetic/test/test_set.csv", dtype=str)["Id"].tolist()
    expected = [f"{i}_{kind}" for i in test_ids for kind in ("classification", "segmentation")]
    assert list(sub.columns) == ["Id", "Predicted"] and sub["Id"].tolist() == expected
    cache = load_cache(r / "data/test")
    masks = [cache.original_mask(i) for i in range(len(cache))]
    scores = score_submission(r / "submission.csv", cache.ids, cache.labels, masks, 20)
    assert 0.0 <= scores["score"] <= 1.0 and scores["rows"] == 2 * len(test_ids)
    recorded = yaml.safe_load((r / "score.yaml").read_text())
    assert recorded["ours"]["score"] == pytest.approx(scores["score"])
    assert set(recorded) == {"ours", "random"}


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
