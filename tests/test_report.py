"""The study report: its parts on hand-computed cases, then whole reports built from a tiny
results tree (real training on the session's tiny dataset), opened in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from helpers import copy_workflow, run_snakemake  # noqa: E402

from vocflow.artifacts import write_metrics  # noqa: E402
from vocflow.baseline import baseline_cell  # noqa: E402
from vocflow.grid import TrainSettings  # noqa: E402
from vocflow.leaderboard import write_leaderboard, write_selection  # noqa: E402
from vocflow.report.build import build_report, render_sections  # noqa: E402
from vocflow.report.context import ReportContext, class_thresholds  # noqa: E402
from vocflow.report.discussion import ablation_sentences, leaderboard_sentences  # noqa: E402
from vocflow.report.palette import colorize, voc_palette  # noqa: E402
from vocflow.report.rulegraph import (  # noqa: E402
    MAX_DAG_JOBS,
    UNAVAILABLE,
    GraphvizError,
    capture_dot,
    count_nodes,
    render_dot,
)
from vocflow.report.sections import ORDER, SECTIONS  # noqa: E402
from vocflow.report.sources import ReportOptions, ReportPaths, optional_inputs  # noqa: E402
from vocflow.report.stats import best_and_worst, runtime_by_stage, stage_of  # noqa: E402
from vocflow.train import train_cell  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("VOCFLOW_TEST_ARTIFACTS", REPO / "results" / "test-artifacts"))
DOT = """digraph snakemake_dag {
    graph[bgcolor=white, margin=0];
	0[label = "all", color = "0.0 0.6 0.85", style="rounded"];
	1[label = "report", color = "0.1 0.6 0.85", style="rounded"];
	2[label = "train_segmentation", color = "0.2 0.6 0.85", style="rounded"];
	3[label = "ingest", color = "0.3 0.6 0.85", style="rounded"];
	3 -> 2
	2 -> 1
	3 -> 1
	1 -> 0
}
"""

# ----------------------------------------------------------------------------- parts


def test_palette_is_the_voc_devkit_colormap() -> None:
    pal = voc_palette()
    expected = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128),
                15: (192, 128, 128), 20: (0, 64, 128), 255: (224, 224, 192)}
    for label, rgb in expected.items():
        assert tuple(pal[label]) == rgb, label
    mask = np.array([[0, 1], [15, 255]], np.uint8)
    assert colorize(mask).shape == (2, 2, 3) and tuple(colorize(mask)[1, 0]) == (192, 128, 128)


def test_runtime_by_stage_sums_benchmarks() -> None:
    assert stage_of(Path("train/segmentation/unet/ce/fold0.tsv")) == "train/segmentation"
    assert stage_of(Path("predict_classification.tsv")) == "predict"
    assert stage_of(Path("attacks/fgsm.tsv")) == "attacks"
    bench = pd.DataFrame({"job": ["a", "b", "c"], "stage": ["train/x", "train/x", "ingest"],
                          "s": [3600.0, 1800.0, 60.0], "cpu_time": [7200.0, 0.0, 30.0],
                          "max_rss": [100.0, 300.0, 50.0]})
    stages = runtime_by_stage(bench, ["train"]).set_index("stage")
    assert stages.at["train/x", "jobs"] == 2 and stages.at["train/x", "wall_h"] == 1.5
    assert stages.at["train/x", "cpu_h"] == 2.0 and stages.at["train/x", "peak_rss_mb"] == 300
    assert stages.at["train/x", "gpu_stage"] and not stages.at["ingest", "gpu_stage"]


def test_class_thresholds_layouts() -> None:
    names = ["cat", "dog"]
    assert class_thresholds({"thresholds": {"cat": 0.3, "dog": 0.6}}, names) == \
        {"cat": 0.3, "dog": 0.6}
    assert class_thresholds([0.1, 0.9], names) == {"cat": 0.1, "dog": 0.9}
    assert class_thresholds({"rule": "x", "grid": {"steps": 3}}, names) is None


def test_best_and_worst() -> None:
    best, worst = best_and_worst(np.array([0.5, 0.9, 0.1, 0.7]), 2)
    assert list(best) == [1, 3] and list(worst) == [2, 0]


def dag_dot(jobs: int) -> str:
    """A chain of ``jobs`` train jobs, as `snakemake --dag` writes it."""
    nodes = "".join(f'\t{i}[label = "train_segmentation\\nfold: {i}", color = "0.2 0.6 0.85", '
                    'style="rounded,dashed"];\n' for i in range(jobs))
    edges = "".join(f"\t{i} -> {i + 1}\n" for i in range(jobs - 1))
    return f"digraph snakemake_dag {{\n    graph[bgcolor=white, margin=0];\n{nodes}{edges}}}\n"


def test_graphviz_draws_the_rule_graph(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert count_nodes(DOT) == 4 and count_nodes(dag_dot(7)) == 7
    assert render_dot(DOT).startswith(b"\x89PNG")
    assert b"<svg" in render_dot(DOT, fmt="svg")
    with pytest.raises(GraphvizError, match="Graphviz 'dot' failed"):
        render_dot("digraph { 0 -> }")
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on it
    with pytest.raises(GraphvizError, match=r"not on PATH: install Graphviz \(apt-get install "
                       "graphviz"):
        render_dot(DOT)


def test_capture_dot_keeps_dot_or_says_why(tmp_path: Path) -> None:
    ok = [sys.executable, "-c", f"print('Building DAG'); print({DOT!r})"]
    capture_dot(ok, tmp_path / "a.dot")
    assert (tmp_path / "a.dot").read_text().startswith("digraph")
    capture_dot([sys.executable, "-c", "import sys; sys.exit('no snakefile')"],
                tmp_path / "b.dot")
    assert (tmp_path / "b.dot").read_text().startswith(f"{UNAVAILABLE}: exit 1: no snakefile")


class FakeRule:
    def __init__(self, *paths: str) -> None:
        self.paths = set(paths)

    def is_producer(self, path: str) -> bool:
        return path in self.paths


@pytest.mark.parametrize(("config", "expected"), [
    ({}, {"post": ["t.yaml"], "attacks": ["s.csv"]}),                     # absent = on
    ({"attacks": None}, {"post": ["t.yaml"], "attacks": []}),             # null = off
    ({"attacks": {"enabled": False}}, {"post": ["t.yaml"], "attacks": []}),
    ({"post": {"crf": {}}}, {"post": ["t.yaml"], "attacks": ["s.csv"]}),
])
def test_optional_inputs_need_an_enabled_stage_and_a_producer(config, expected) -> None:
    files = {"post": ["t.yaml", "no_rule_writes_me.csv"], "attacks": ["s.csv"]}
    rules = [FakeRule("t.yaml"), FakeRule("s.csv")]
    assert optional_inputs(config, files, rules) == expected


def test_discussion_sentences_on_a_hand_made_board() -> None:
    board = pd.DataFrame({
        "task": ["classification"] * 4, "model": ["a", "a", "b", "random"],
        "loss": ["x", "y", "x", "prior"], "folds": [3] * 4, "selection_metric": ["map"] * 4,
        "score_mean": [0.8, 0.6, 0.7, 0.1], "score_std": [0.05, 0.0, 0.2, 0.0],
        "rank": [1, 3, 2, 4]})
    text = leaderboard_sentences(board)
    assert text[0] == ("For classification, the best cell is a / x with map 0.800 ± 0.050 over "
                       "3 folds, +0.700 against the random baseline (0.100).")
    assert text[1] == ("It leads the runner-up (b / x) by 0.100, larger than its fold standard "
                       "deviation (0.050).")
    # models: a = (0.8 + 0.6) / 2 = 0.7, b = 0.7 -> tie, 0.000; losses: x = 0.75, y = 0.6
    assert "loss x gave map 0.750 and loss y 0.600, a difference of +0.150." in text[3]
    ablation = pd.DataFrame({"task": ["segmentation"] * 3, "step": ["raw", "+thr", "+crf"],
                             "kaggle": [0.5, 0.6, 0.55], "miou": [0.4, 0.4, 0.4]})
    assert ablation_sentences(ablation) == [
        "For segmentation, post-processing moved the kaggle score from 0.500 (raw) to 0.550 "
        "(+crf), +0.050; the largest single step was +thr (+0.100)."]


@pytest.mark.parametrize("name", SECTIONS.names())
def test_every_section_says_not_run_without_inputs(name: str) -> None:
    ctx = ReportContext(ReportPaths(), ReportOptions())
    sec = SECTIONS.build(name)(ctx)
    text = "".join(sec.parts)
    assert 'class="error"' not in text
    if name != "provenance":  # provenance always knows the code and package versions
        assert "not run" in text, name
    assert not sec.figures


def test_section_order_lists_every_registered_section() -> None:
    assert sorted(ORDER) == SECTIONS.names()


# ----------------------------------------------------------------------------- a results tree

CELLS = {
    "classification": [("cnn", "bce", {"widths": [4, 8], "dense": 8}),
                       ("cnn", "focal", {"widths": [4, 8], "dense": 8})],
    "segmentation": [("unet", "ce", {"base_width": 4, "levels": 1})],
}


def train_grid(tiny: dict, out: Path) -> dict[str, list[str]]:
    """One epoch per cell and fold, plus the random baseline: the files the workflow writes."""
    metrics = []
    for task, cells in CELLS.items():
        for model, loss, params in cells:
            for fold in (0, 1):
                cell = out / task / model / loss / f"fold{fold}"
                settings = TrainSettings(task=task, model=model, arch=model, loss=loss,
                                         model_params=params, epochs=2, batch_size=8,
                                         lr=3e-3).to_dict()
                train_cell(tiny["train"], tiny["folds"], fold, settings, cell / "best.pt",
                           cell / "metrics.csv", cell / "oof.npz")
                metrics.append(str(cell / "metrics.csv"))
        for fold in (0, 1):
            cell = out / task / "random" / "prior" / f"fold{fold}"
            baseline_cell(tiny["train"], tiny["folds"], fold, task, 0, cell / "metrics.csv",
                          cell / "oof.npz")
            metrics.append(str(cell / "metrics.csv"))
    write_leaderboard(metrics, {"classification": "map", "segmentation": "kaggle"},
                      out / "leaderboard.csv")
    for task, cells in CELLS.items():
        grid = {f"{m}/{loss}": {"checkpoints": [str(out / task / m / loss / f"fold{k}" / "best.pt")
                                             for k in (0, 1)],
                             "oof": [str(out / task / m / loss / f"fold{k}" / "oof.npz")
                                     for k in (0, 1)]} for m, loss, _ in cells}
        write_selection(out / "leaderboard.csv", task, grid, out / task / "selected.yaml")
    return {"metrics": metrics}


def small_png(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.text(0.5, 0.5, text, ha="center")
    ax.axis("off")
    fig.savefig(path, dpi=40)
    plt.close(fig)


def other_stages(out: Path, class_names: list[str]) -> None:
    """Post-processing and attack outputs in the formats those stages write."""
    for task, names in (("classification", class_names),
                        ("segmentation", ["background", *class_names])):
        grid = np.linspace(0.05, 0.95, 5)
        (out / task / "thresholds.yaml").write_text(yaml.safe_dump(
            {"task": task, "thresholds": dict.fromkeys(names, 0.35)}))
        pd.DataFrame({"class": np.repeat(names, 5), "threshold": np.tile(grid, len(names)),
                      "score": np.tile(1 - (grid - 0.4) ** 2, len(names))}
                     ).to_csv(out / task / "threshold_curves.csv", index=False)
    (out / "segmentation" / "crf.yaml").write_text(yaml.safe_dump({"sxy": 3, "compat": 4}))
    small_png(out / "segmentation" / "crf_panels" / "example0.png", "crf")
    pd.DataFrame({"task": ["segmentation"] * 3, "step": ["raw", "+thr", "+crf"],
                  "kaggle": [0.2, 0.25, 0.3], "miou": [0.1, 0.12, 0.15], "notes": ["", "", ""]}
                 ).to_csv(out / "ablation.csv", index=False)
    (out / "attacks").mkdir()
    rows = [{"task": t, "attack": "fgsm", "targeted": False, "epsilon": e, "success_rate": r,
             "metric_clean": 0.5, "metric_adv": 0.5 - r / 2, "metric_drop": r / 2, "linf": e,
             "l2": e, "psnr": 40.0, "ssim": 0.99, "seconds_per_image": 0.01, "crf": False}
            for t in ("classification", "segmentation") for e, r in ((1, 0.2), (4, 0.7))]
    pd.DataFrame(rows).to_csv(out / "attacks" / "summary.csv", index=False)
    small_png(out / "attacks" / "success_vs_eps.png", "success")
    small_png(out / "attacks" / "panels" / "fgsm_classification.png", "panel")


def benchmarks(out: Path) -> None:
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for rel, s in (("ingest_train.tsv", 1.5), ("train/classification/cnn/bce/fold0.tsv", 30.0),
                   ("train/classification/cnn/bce/fold1.tsv", 34.0)):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(header + f"{s}\t0:00:{int(s):02d}\t120.5\t300\t90\t95\t0\t0\t0\t"
                               f"{s / 2}\n")


@pytest.fixture(scope="module")
def results(tiny_data: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two report inputs over one trained tree: ``full`` (every stage) and ``bare`` (no
    post-processing, attacks, score, benchmarks or rule graph)."""
    out = tmp_path_factory.mktemp("results")
    grid = train_grid(tiny_data, out)
    base = {"leaderboard": str(out / "leaderboard.csv"), "metrics": grid["metrics"],
            "selections": {t: str(out / t / "selected.yaml") for t in CELLS},
            "train_cache": str(tiny_data["train"]), "test_cache": str(tiny_data["test"]),
            "folds": str(tiny_data["folds"])}
    bare = {**base, "score": str(out / "absent.yaml"), "attacks_dir": str(out / "attacks"),
            "thresholds": {t: str(out / t / "thresholds.yaml") for t in CELLS}}
    names = list(pd.read_csv(Path(tiny_data["train"]) / "index.csv").columns[4:])
    reports = {"bare": out / "bare" / "index.html"}
    build_report(bare, reports["bare"], out / "bare" / "figures", out / "bare" / "discussion.md")
    other_stages(out, names)
    benchmarks(out / "benchmarks")
    (out / "rulegraph.dot").write_text(DOT)
    (out / "dag.dot").write_text(dag_dot(3))
    (out / "score.yaml").write_text(yaml.safe_dump(
        {"ours": {"score": 0.4, "classification": 0.5, "segmentation": 0.3},
         "random": {"score": 0.1, "classification": 0.15, "segmentation": 0.05}}))
    full = {**bare, "score": str(out / "score.yaml"), "benchmarks": str(out / "benchmarks"),
            "rulegraph": str(out / "rulegraph.dot"), "dag": str(out / "dag.dot"),
            "repo": str(REPO),
            "threshold_curves": {t: str(out / t / "threshold_curves.csv") for t in CELLS},
            "crf": str(out / "segmentation" / "crf.yaml"),
            "crf_panels": str(out / "segmentation" / "crf_panels"),
            "ablation": str(out / "ablation.csv"),
            "attacks_summary": str(out / "attacks" / "summary.csv")}
    reports["full"] = out / "full" / "index.html"
    build_report(full, reports["full"], out / "full" / "figures", out / "full" / "discussion.md",
                 options={"examples": 2}, config={"seed": 0, "folds": 2})
    return {"out": out, "reports": reports, "full": full}


def sections_of(html: str) -> dict[str, str]:
    """Section key -> its inner HTML."""
    return dict(re.findall(r'<section id="(\w+)" data-section="\w+">(.*?)</section>', html, re.S))


def test_full_report_renders_every_section(results: dict) -> None:
    html = results["reports"]["full"].read_text()
    found = sections_of(html)
    assert list(found) == list(ORDER)
    assert 'class="error"' not in html
    for key in ("data", "leaderboard", "training", "per_class", "qualitative", "post", "attacks",
                "submission", "runtime", "provenance", "discussion"):
        assert "not run" not in found[key], key
    assert found["leaderboard"].count('class="best"') == 2  # one best cell per task
    assert "<td>0.4000</td>" in found["submission"]
    # runtime: 3 jobs, (1.5 + 30 + 34) s = 0.018 wall-hours, of which 64 s in train stages
    assert "3 benchmarked jobs: 0.018 wall-hours" in found["runtime"]
    assert "GPU-hours 0.018" in found["runtime"]
    figures = results["out"] / "full" / "figures"
    names = {str(p.relative_to(figures)) for p in figures.rglob("*.png")}
    assert {"data/examples.png", "leaderboard/classification_grid.png",
            "training/segmentation_curves.png", "per_class/segmentation_confusion.png",
            "qualitative/segmentation_worst.png", "post/classification_threshold_curves.png",
            "runtime/runtime.png", "provenance/rulegraph.png", "provenance/dag.png"} <= names
    # The attack stage drew its own success plot, so the report embeds that one instead.
    assert "attacks/success_vs_eps.png" not in names and "success_vs_eps.png" in found["attacks"]
    md = (results["out"] / "full" / "discussion.md").read_text()
    assert "best cell is" in md and "post-processing moved the kaggle score" in md
    assert "the strongest attack at the largest budget (ε = 4) is fgsm" in md


def test_missing_stages_render_as_not_run(results: dict) -> None:
    found = sections_of(results["reports"]["bare"].read_text())
    assert list(found) == list(ORDER)
    for key, what in (("post", "Post-processing (thresholds, CRF, ablation): not run"),
                      ("attacks", "Attacks: not run"),
                      ("submission", "Scoring on a labelled test split: not run"),
                      ("runtime", "Runtime: not run")):
        assert what in found[key], key
    for key in ("data", "leaderboard", "training", "per_class", "qualitative"):
        assert "not run" not in found[key] and "<img" in found[key], key
    assert "Rule graph: not run" in found["provenance"]
    assert 'class="error"' not in results["reports"]["bare"].read_text()


def test_a_broken_input_shows_in_its_section_only(results: dict, tmp_path: Path) -> None:
    (tmp_path / "summary.csv").write_text('task,attack\n"unclosed\n')
    paths = ReportPaths(attacks_summary=str(tmp_path / "summary.csv"))
    sections = {s.key: "".join(s.parts) for s in render_sections(
        ReportContext(paths, ReportOptions()))}
    assert 'class="error"' in sections["attacks"] and "summary.csv" in sections["attacks"]
    assert all('class="error"' not in v for k, v in sections.items() if k != "attacks")


def provenance_of(paths: ReportPaths) -> str:
    (sec,) = render_sections(ReportContext(paths, ReportOptions()), ["provenance"])
    return "".join(sec.parts)


def test_provenance_draws_both_graphs_but_not_a_big_dag(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    (tmp_path / "rules.dot").write_text(DOT)
    (tmp_path / "small.dot").write_text(dag_dot(MAX_DAG_JOBS))
    (tmp_path / "big.dot").write_text(dag_dot(MAX_DAG_JOBS + 1))
    html = provenance_of(ReportPaths(rulegraph=str(tmp_path / "rules.dot"),
                                     dag=str(tmp_path / "small.dot")))
    assert 'data-figure="provenance/rulegraph"' in html and 'data-figure="provenance/dag"' in html
    html = provenance_of(ReportPaths(rulegraph=str(tmp_path / "rules.dot"),
                                     dag=str(tmp_path / "big.dot")))
    assert 'data-figure="provenance/rulegraph"' in html and "provenance/dag" not in html
    assert f"Job DAG: {MAX_DAG_JOBS + 1} jobs, more than {MAX_DAG_JOBS}, so only the rule" in html
    (tmp_path / "off.dot").write_text(f"{UNAVAILABLE}: switched off (report.rulegraph: false)\n")
    html = provenance_of(ReportPaths(rulegraph=str(tmp_path / "off.dot")))
    assert "Rule graph: not run (switched off (report.rulegraph: false))" in html
    assert "Job DAG: not run." in html
    monkeypatch.setenv("PATH", str(tmp_path))  # no Graphviz: one error line, no figure
    html = provenance_of(ReportPaths(rulegraph=str(tmp_path / "rules.dot")))
    assert '<p class="error">Rule graph could not be shown: Graphviz &#x27;dot&#x27; is not on ' \
        "PATH: install Graphviz (apt-get install graphviz" in html and "<img" not in html


def partial_report(out: Path, missing: list[dict]) -> str:
    """The report of a hand-made segmentation board: unet/ce (0.5, 0.7), fcn/ce (fold 0 at
    0.9), the baseline (0.1); ``missing``: the cell folds without results."""
    metrics = []
    for model, loss, scores in (("unet", "ce", (0.5, 0.7)), ("fcn", "ce", (0.9, 0.9)),
                                ("random", "prior", (0.1, 0.1))):
        for fold, score in enumerate(scores):
            if any(m["model"] == model and m["fold"] == fold for m in missing):
                continue
            metrics.append(out / model / f"fold{fold}" / "metrics.csv")
            write_metrics(metrics[-1], [{"epoch": 1, **{f"val_{m}": score
                                                         for m in ("miou", "dice", "kaggle")}}],
                          {"task": "segmentation", "model": model, "loss": loss}, fold, "kaggle")
    write_leaderboard(metrics, {"segmentation": "kaggle"}, out / "board.csv", missing)
    cells = {f"{m}/ce": {"checkpoints": [], "oof": []} for m in ("unet", "fcn")}
    write_selection(out / "board.csv", "segmentation", cells, out / "selected.yaml", partial=True)
    score = {"ours": {"score": 0.4, "classification": 0.5, "segmentation": 0.3}}
    if missing:
        score.update(partial=True, failed_cells=["segmentation/fcn/ce"])
    (out / "score.yaml").write_text(yaml.safe_dump(score))
    build_report({"leaderboard": str(out / "board.csv"), "score": str(out / "score.yaml"),
                  "selections": {"segmentation": str(out / "selected.yaml")}},
                 out / "index.html")
    return (out / "index.html").read_text()


def test_a_partial_grid_shows_its_failed_cells_and_a_banner(tmp_path: Path) -> None:
    log = "results/logs/train/segmentation/fcn/ce/fold1.log"
    html = partial_report(tmp_path, [{"task": "segmentation", "model": "fcn", "loss": "ce",
                                      "fold": 1, "log": log}])
    assert 'class="error"' not in html
    banner = ('<p class="banner" data-banner="1">Partial grid: 1 cells failed '
              "(segmentation/fcn/ce); the leaderboard, selection and submission come from the "
              "cells that finished")
    assert html.index(banner) < html.index("<nav>")  # above everything, seen first
    board = sections_of(html)["leaderboard"]
    # fcn's finished fold scored 0.9, yet the cell failed: listed last, never the best
    assert '<tr class="best"><td>1</td><td class="text">unet</td>' in board
    failed = re.findall(r'<tr class="failed">(.*?)</tr>', board)
    assert failed == ['<td>3</td><td class="text">fcn</td><td class="text">ce</td><td>1</td>'
                      + '<td class="text">failed</td>' * 3
                      + f'<td class="text">failed: no results for fold 1; log {log}</td>']
    assert "Selected: unet / ce (kaggle 0.6000 ± 0.1414). It comes from a partial grid: 1 " \
           "cells failed (fcn/ce)." in board
    submission = sections_of(html)["submission"]
    assert "This submission comes from a partial grid: 1 cells failed (segmentation/fcn/ce)." \
        in submission and "<td>0.4000</td>" in submission and "partial</td>" not in submission


def test_a_complete_grid_has_no_banner_and_no_status_column(tmp_path: Path) -> None:
    html = partial_report(tmp_path, [])
    assert 'class="banner"' not in html and 'class="failed"' not in html
    assert "<th>status</th>" not in html and "partial grid" not in html
    assert '<tr class="best"><td>1</td><td class="text">fcn</td>' in html


@pytest.mark.workflow
def test_rulegraph_rule_captures_both_graphs(tmp_path: Path) -> None:
    """The rulegraph job of a real workflow copy (config/config.yaml: report.rulegraph on)."""
    workdir = copy_workflow(tmp_path)
    result = run_snakemake(workdir, "--cores", "1", "results/report/rulegraph.dot")
    assert result.returncode == 0, result.stderr[-3000:]
    rules = (workdir / "results/report/rulegraph.dot").read_text()
    dag = (workdir / "results/report/dag.dot").read_text()
    assert rules.startswith("digraph") and dag.startswith("digraph")
    assert '[label = "train_classification",' in rules  # one node per rule
    assert dag.count('[label = "train_classification\\n') > 1  # one node per job
    assert count_nodes(dag) > count_nodes(rules)


# ----------------------------------------------------------------------------- in a browser

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--virtual-time-budget=10000"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def run_chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("which", ["full", "bare"])
def test_report_in_headless_chromium(results: dict, which: str) -> None:
    page = results["reports"][which]
    dom = run_chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stdout[:500]
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    expected = page.read_text().count("<img ")
    assert expected > 10
    assert attrs == {"data-images": str(expected), "data-broken-images": "0",
                     "data-sections": str(len(ORDER))}
    imgs = re.findall(r"<img [^>]*>", dom.stdout)
    assert len(imgs) == expected and all('data-ok="1"' in i for i in imgs)
    for key, inner in sections_of(dom.stdout).items():
        assert "<h2>" in inner and len(inner) > 40, key
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"report_{which}.png"
    # Tall enough for the whole tiny report, so the artefact shows every section.
    done = run_chromium(f"--screenshot={shot}", "--window-size=1200,14000", page.as_uri())
    assert done.returncode == 0 and shot.read_bytes().startswith(b"\x89PNG"), done.stderr[-2000:]
    shutil.copy(page, ARTIFACTS / f"report_{which}.html")
