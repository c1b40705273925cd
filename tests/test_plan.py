"""`vocflow plan`: parsing Snakemake's dry run and DAG, the GPU-hours estimate on hand-computed
benchmarks, and the plan of a real workflow copy with some cells trained."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import copy_workflow, run_snakemake

from vocflow import cli
from vocflow.plan import (
    Job,
    benchmark_seconds,
    cell_seconds,
    estimate,
    format_plan,
    make_plan,
    parse_dag,
    parse_dry_run,
)

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
# Excerpts of Snakemake 9 output: a dry run (a local rule, a checkpoint, a group job's members,
# the job stats table) and --dag (job 2 done, dashed).
DRY_RUN = """Building DAG of jobs...
Job stats:
job                     count
--------------------  -------
train_classification        1
total                       3

[Sat Dec  5 13:03:44 2026]
localrule fetch_weight:
    output: results/weights/W.yaml
    jobid: 10
    resources: tmpdir=/tmp
[Sat Dec  5 13:03:44 2026]
rule train_classification:
    output: results/classification/cnn/bce/fold1/best.pt
    jobid: 11
    benchmark: results/benchmarks/train/classification/cnn/bce/fold1.tsv
    wildcards: model=cnn, loss=bce, fold=1
    resources: tmpdir=/tmp, gpu=1, cpus_per_gpu=1, runtime=120, mem_mb=4000, mem=4 GB
[Sat Dec  5 13:03:44 2026]
checkpoint select:
    output: results/classification/selected.yaml
    jobid: 40
    wildcards: task=classification
    resources: tmpdir=/tmp
[Sat Dec  5 13:03:44 2026] Group job infer (jobs in lexicogr. order):

    [Sat Dec  5 13:03:44 2026]
    rule predict:
        output: results/classification/test_probs.npz
        benchmark: results/benchmarks/predict_classification.tsv
        wildcards: task=classification
        resources: tmpdir=/tmp, gpus=a100:2, gpu_slot=1
Job stats:
job                     count
--------------------  -------
total                       4

This was a dry-run (flag -n). The order of jobs does not reflect the order of execution.
"""
DAG = """digraph snakemake_dag {
    graph[bgcolor=white, margin=0];
	0[label = "all", color = "0.04 0.6 0.85", style="rounded"];
	2[label = "train_classification\\nfold: 0\\nloss: bce\\nmodel: cnn", color = "0.6 0.6 0.85", style="rounded,dashed"];
	11[label = "train_classification\\nfold: 1\\nloss: bce\\nmodel: cnn", color = "0.6 0.6 0.85", style="rounded"];
	2 -> 0
	11 -> 0
}
"""  # noqa: E501 - Snakemake's own lines


def bench(path: Path, *seconds: float) -> Path:
    """A Snakemake benchmark file with one row per repeat."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(f"{s}\t0:00:01\t1\t1\t1\t1\t0\t0\t0\t1\n" for s in seconds))
    return path


def test_dry_run_jobs_with_wildcards_resources_and_benchmarks() -> None:
    jobs = parse_dry_run(DRY_RUN)
    assert [j.rule for j in jobs] == ["fetch_weight", "train_classification", "select",
                                      "predict"]
    train = jobs[1]
    assert train.wildcards == {"model": "cnn", "loss": "bce", "fold": "1"}
    assert train.resources["mem"] == "4 GB" and train.gpus == 1
    assert train.benchmark == "results/benchmarks/train/classification/cnn/bce/fold1.tsv"
    assert [j.gpus for j in jobs] == [0, 1, 0, 2]  # predict: the slurm plugin's gpus=a100:2
    assert Job("x", resources={"gres": "gpu:1"}).gpus == 1
    assert parse_dag(DAG) == [("all", False), ("train_classification", True),
                              ("train_classification", False)]


def test_estimates_from_finished_cells(tmp_path: Path) -> None:
    root = tmp_path / "train"
    bench(root / "classification/cnn/bce/fold0.tsv", 100.0, 300.0)  # repeats: mean 200
    bench(root / "classification/cnn/bce/fold1.tsv", 400.0)
    bench(root / "classification/lite0/bce/fold0.tsv", 900.0)
    (root / "classification/lite0/bce/fold1.tsv").write_text("not a benchmark\n")  # ignored
    cells = cell_seconds(root)
    assert cells == {("classification", "cnn"): [200.0, 400.0],
                     ("classification", "lite0"): [900.0]}
    train = {"rule": "train_classification", "resources": {"gpu": "1"}}
    cnn = estimate(Job(**train, wildcards={"model": "cnn"}), cells)
    assert (cnn.seconds, cnn.basis) == (300.0, "model")
    new = estimate(Job(**train, wildcards={"model": "vit"}), cells)  # (200 + 400 + 900) / 3
    assert (new.seconds, new.basis) == (500.0, "task")
    refit = estimate(Job("refit", wildcards={"task": "classification", "seed": "0"}), cells)
    assert (refit.seconds, refit.basis) == (500.0, "task")
    seg = estimate(Job("train_segmentation", wildcards={"model": "unet"}), cells)
    assert (seg.seconds, seg.basis) == (None, "unknown")
    bench(tmp_path / "bench/attack.tsv", 60.0)
    attack = estimate(Job("attack", benchmark="bench/attack.tsv"), cells, tmp_path)
    assert (attack.seconds, attack.basis) == (60.0, "own")
    assert estimate(Job("attack", benchmark="bench/none.tsv"), cells, tmp_path).basis == "unknown"
    assert benchmark_seconds(tmp_path / "absent.tsv") is None


def test_plan_text_from_outputs(tmp_path: Path) -> None:
    bench(tmp_path / "train/classification/cnn/bce/fold0.tsv", 1800.0)
    plan = make_plan(DRY_RUN, DAG, tmp_path / "train", tmp_path)
    assert plan.done["train_classification"] == 1 and plan.to_run["train_classification"] == 1
    assert plan.pending == 4 and [j.rule for j, _ in plan.gpu_jobs] == ["train_classification",
                                                                         "predict"]
    text = format_plan(plan)
    # train: one cell like the finished one (0.5 h); predict: 2 GPUs, no benchmark yet
    assert re.search(r"train_classification +1 +1 +2\n", text)
    assert re.search(r"train_classification +1 +0\.50 +0\n", text)
    assert re.search(r"predict +1 +\? +1\n", text)
    assert "Estimated GPU-hours: 0.50 for 1 of 2 GPU jobs" in text


# ----------------------------------------------------------------------------- a real workflow

DONE = ("classification/cnn/bce/fold0", "classification/cnn/bce/fold1")


@pytest.fixture(scope="module")
def half_trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny study (refit on) with its data stages and two cnn cells really run, then the
    benchmark files set to known wall times: the two cells 100 s and 200 s, and files left by
    earlier runs of cells whose outputs are gone (lite0 1000 s, unet 720 s)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("plan"), "config", "plan")
    targets = [f"results/{cell}/metrics.csv" for cell in DONE]
    result = run_snakemake(workdir, "--profile", "profiles/local", *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    root = workdir / "results/benchmarks/train"
    for cell, seconds in (*zip(DONE, (100.0, 200.0), strict=True),
                          ("classification/lite0/bce/fold0", 1000.0),
                          ("segmentation/unet/ce/fold0", 720.0)):
        bench(root / f"{cell}.tsv", seconds)
    return workdir


@pytest.mark.workflow
def test_plan_of_a_half_trained_study(half_trained: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", "--workdir", str(half_trained)]) == 0
    text = capsys.readouterr().out
    # Grid: 2 models x 2 losses x 2 folds per task; refit: one seed per task.
    for rule, done, to_run in (("train_classification", 2, 6), ("train_segmentation", 0, 8),
                               ("refit", 0, 2)):
        assert re.search(rf"\n{rule} +{done} +{to_run} +{done + to_run}\n", text), text
    # classification: cnn/focal x 2 folds at cnn's mean 150 s, lite0 x 4 at 1000 s: 4300 s;
    # segmentation: unet x 4 at 720 s (model), lite0_fpn x 4 at 720 s (task): 5760 s;
    # refit: the task means (100 + 200 + 1000) / 3 s and 720 s: 1153.3 s. In all 3.11 h.
    for rule, jobs, hours in (("train_classification", 6, "1.19"),
                              ("train_segmentation", 8, "1.60"), ("refit", 2, "0.32")):
        assert re.search(rf"\n{rule} +{jobs} +{hours} +0\n", text), text
    assert re.search(r"Estimated GPU-hours: 3\.11 for 16 of \d+ GPU jobs \(mean wall time of "
                     r"the finished cells of their task and model: 10 jobs; of their task \(no "
                     r"finished cell of their model\): 6 jobs\)", text), text


@pytest.mark.workflow
def test_plan_passes_snakemake_arguments(half_trained: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Targets after --: only what they need (one more cnn cell) is planned."""
    target = "results/classification/cnn/focal/fold0/metrics.csv"
    assert cli.main(["plan", "--workdir", str(half_trained), "--", target]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Pending jobs: 1 (1 on a GPU).")
    assert re.search(r"\ntrain_classification +0 +1 +1\n", text), text  # the DAG of one job
    assert "Estimated GPU-hours: 0.04 for 1 of 1 GPU jobs" in text  # cnn's mean 150 s
    assert cli.main(["plan", "--workdir", str(half_trained), "--", "--configfile",
                     "absent.yaml"]) == 1
