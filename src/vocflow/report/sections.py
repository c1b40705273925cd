"""The report's sections, one registered renderer each: ``ReportContext -> Section``.

A renderer shows whatever its inputs hold and a "not run" line for each missing part; it never
fails because a stage has not run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from vocflow.artifacts import BASELINE_MODEL, CELL_DONE, CELL_FAILED, failed_rows
from vocflow.data.cache import Cache
from vocflow.data.folds import read_folds
from vocflow.registry import Registry
from vocflow.report import discussion as talk
from vocflow.report import figures as F
from vocflow.report.context import ReportContext
from vocflow.report.html import (
    Section,
    bullet_list,
    collapsed,
    error_line,
    esc,
    figure_tag,
    not_run,
    paragraph,
    preformatted,
    table,
)
from vocflow.report.panels import classification_panel, examples_figure, segmentation_panel
from vocflow.report.provenance import git_version, package_versions, platform_summary
from vocflow.report.rulegraph import (
    MAX_DAG_JOBS,
    GraphvizError,
    count_nodes,
    render_dot,
    unavailable_reason,
)
from vocflow.report.sources import existing, pngs, read_csv, read_yaml
from vocflow.report.stats import best_and_worst, class_frequencies, example_per_class, fold_balance

log = logging.getLogger(__name__)
Renderer = Callable[[ReportContext], Section]
SECTIONS: Registry[Renderer] = Registry("report section")
# Page order; every registered section appears exactly once.
ORDER = ("data", "leaderboard", "training", "per_class", "qualitative", "post", "attacks",
         "submission", "runtime", "provenance", "discussion")


def section(name: str) -> Callable[[Renderer], Renderer]:
    """Register a renderer (the registry stores a factory, so its errors are not re-labelled)."""
    def add(render: Renderer) -> Renderer:
        SECTIONS.register(name)(lambda: render)
        return render
    return add


def needing(title: str, source: Callable[[ReportContext], Any], missing: tuple[str, str]
            ) -> Callable[[Callable[[ReportContext, Section, Any], None]], Renderer]:
    """A renderer of a section that shows one context input: ``source(ctx)``; when that is
    None or empty the section holds only the not-run line ``missing`` (what, why)."""
    def wrap(fill: Callable[[ReportContext, Section, Any], None]) -> Renderer:
        def render(ctx: ReportContext) -> Section:
            sec, value = Section(fill.__name__.removesuffix("_section"), title), source(ctx)
            if value is None or getattr(value, "empty", False):
                sec.add(not_run(*missing))
            else:
                fill(ctx, sec, value)
            return sec
        return render
    return wrap


@section("data")
@needing("Data", lambda ctx: ctx.train, ("Data ingestion", "no training cache"))
def data_section(ctx: ReportContext, sec: Section, train: Cache) -> None:
    n_test = f", {len(ctx.test)} test images" if ctx.test is not None else ""
    sec.add(paragraph(f"{len(train)} training images{n_test}; {len(train.class_names)} classes; "
                      f"cached at {train.images.shape[1]} px."))
    sec.figure("class_frequency", ctx.png(F.class_frequency_figure(class_frequencies(train))),
               "Images per class and share of object pixels per class (training split).")
    sec.figure("examples", ctx.png(examples_figure(train, example_per_class(train))),
               "One training example per class (the image where it covers most pixels) with "
               "its mask in the VOC palette; void is the cream outline.")
    sizes = {"train": (train.heights, train.widths)}
    if ctx.test is not None:
        sizes["test"] = (ctx.test.heights, ctx.test.widths)
    sec.figure("image_sizes", ctx.png(F.image_size_figure(sizes)), "Original image sizes.")
    if existing(ctx.paths.folds) is None:
        sec.add(not_run("Fold assignment"))
        return
    balance = fold_balance(train, read_folds(ctx.paths.folds, train.ids))
    sec.figure("fold_balance", ctx.png(F.fold_balance_figure(balance)),
               "Fold balance: images per fold and class (multilabel-stratified).")


def _leaderboard_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The table of one task: rank, cell, folds and mean ± std per metric; with failed cells, a
    status column naming each failed cell's unfinished folds and its training log."""
    metrics = [c[:-5] for c in rows.columns if c.endswith("_mean") and c != "score_mean"
               and rows[c].notna().any()]
    first = rows["selection_metric"].iloc[0]  # the ranking metric leads
    metrics = sorted(metrics, key=lambda m: (m != first, m))
    failed = failed_rows(rows)
    out = rows[["rank", "model", "loss", "folds"]].copy()
    for m in metrics:
        std = rows[f"{m}_std"].fillna(0.0)
        out[m] = ["failed" if bad else "–" if pd.isna(a) else f"{a:.4f} ± {b:.4f}"
                  for a, b, bad in zip(rows[f"{m}_mean"], std, failed, strict=True)]
    if failed.any():
        out["status"] = [_failed_status(r) if bad else CELL_DONE
                         for r, bad in zip(rows.itertuples(index=False), failed, strict=True)]
    return out


def _failed_status(row: Any) -> str:
    folds = str(row.failed_folds)
    which = f"folds {folds}" if "," in folds else f"fold {folds}"
    return f"{CELL_FAILED}: no results for {which}; log {row.log}"


def failed_cells(ctx: ReportContext) -> list[str]:
    """task/model/loss of every failed cell, from the leaderboard and the selections."""
    found = []
    if ctx.board is not None:
        bad = ctx.board[failed_rows(ctx.board)]
        found = [f"{r.task}/{r.model}/{r.loss}" for r in bad.itertuples(index=False)]
    for task, sel in sorted(ctx.selections.items()):
        found += [f"{task}/{c}" for c in sel.failed_cells]
    return list(dict.fromkeys(found))


def partial_banner(ctx: ReportContext) -> str:
    """The page's banner when the study ran on a partial grid ("" otherwise)."""
    cells = failed_cells(ctx)
    if not cells:
        return ""
    return (f"Partial grid: {len(cells)} cells failed ({', '.join(cells)}); the leaderboard, "
            "selection and submission come from the cells that finished (--config "
            "partial=true). The failed rows of the leaderboard name their logs.")


@section("leaderboard")
@needing("Leaderboard", lambda ctx: ctx.board, ("Leaderboard", "no trained grid yet"))
def leaderboard_section(ctx: ReportContext, sec: Section, board: pd.DataFrame) -> None:
    for task in ctx.tasks:
        rows = board[board["task"] == task].sort_values("rank")
        sec.add(f"<h3>{esc(task)}</h3>")
        if rows.empty:
            sec.add(not_run(f"{task} training"))
            continue
        failed = failed_rows(rows)
        trained = rows[(rows["model"] != BASELINE_MODEL) & rows["score_mean"].notna() & ~failed]
        best = trained["rank"].min() if len(trained) else None
        sec.add(table(_leaderboard_frame(rows), highlight=list(rows["rank"] == best),
                      failed=list(failed)))
        if task in ctx.selections:
            s = ctx.selections[task]
            partial = (f" It comes from a partial grid: {len(s.failed_cells)} cells failed "
                       f"({', '.join(s.failed_cells)})." if s.partial else "")
            sec.add(paragraph(f"Selected: {s.model} / {s.loss} ({s.metric} "
                              f"{s.mean:.4f} ± {s.std:.4f}).{partial}"))
        if len(trained):
            sec.figure(f"{task}_grid", ctx.png(F.grid_heatmap(board, task)),
                       f"{task}: the model × loss grid, fold mean of the selection metric; the "
                       "best cell is boxed.")


@section("training")
@needing("Training", lambda ctx: ctx.history, ("Training", "no metrics.csv yet"))
def training_section(ctx: ReportContext, sec: Section, history: pd.DataFrame) -> None:
    for task in sorted(history["task"].unique()):
        if not (history.loc[history["task"] == task, "epoch"] > 0).any():
            continue
        metric = ctx.metric(task)
        sec.figure(f"{task}_curves", ctx.png(F.learning_curves(history, task, metric)),
                   f"{task}: learning curves per model × loss, folds overlaid (solid: "
                   f"training set, dashed: validation; left: loss, right: {metric}).")


@section("per_class")
def per_class_section(ctx: ReportContext) -> Section:
    sec = Section("per_class", "Per-class scores")
    if not ctx.evals:
        sec.add(not_run("Per-class evaluation", "needs a selected cell and its OOF predictions"))
        return sec
    for task, ev in sorted(ctx.evals.items()):
        cols = [c for c in ("ap", "f1", "f1_tuned", "dice", "iou") if c in ev.per_class]
        sec.figure(f"{task}_scores", ctx.png(F.per_class_bars(ev.per_class, cols, task)),
                   f"{task}: per-class {', '.join(cols)} of the selected cell's out-of-fold "
                   "predictions (F1 at 0.5; f1_tuned at the tuned thresholds).")
        sec.add(collapsed(f"{task}: per-class table",
                          table(ev.per_class[["class", *cols]], digits=3)))
        report = read_csv(ctx.paths.class_report) if task == "classification" else None
        if report is not None:
            sec.add(paragraph("classification: per-class precision, recall, F1 and support at "
                              "the tuned thresholds, with ROC-AUC and AP (out-of-fold; "
                              "results/classification/class_report.csv)."))
            sec.add(table(report, digits=3))
        if ev.confusion is not None:
            names = list(ev.per_class["class"])
            sec.figure(f"{task}_confusion", ctx.png(F.confusion_figure(ev.confusion, names)),
                       f"{task}: row-normalised pixel confusion matrix (out-of-fold, void "
                       "excluded).")
    return sec


@section("qualitative")
def qualitative_section(ctx: ReportContext) -> Section:
    sec = Section("qualitative", "Best and worst predictions")
    if not ctx.evals or ctx.train is None:
        sec.add(not_run("Qualitative examples", "needs a selected cell and its OOF predictions"))
        return sec
    for task, ev in sorted(ctx.evals.items()):
        best, worst = best_and_worst(ev.per_image, ctx.options.examples)
        panel = segmentation_panel if task == "segmentation" else classification_panel
        for name, picks in (("best", best), ("worst", worst)):
            title = f"{task}: {name} {len(picks)} out-of-fold predictions (Kaggle Dice)"
            sec.figure(f"{task}_{name}", ctx.png(panel(ctx.train, ev, list(picks), title)), title)
    return sec


def scalars(data: dict) -> pd.DataFrame:
    """The scalar entries of a YAML mapping and of its mappings one level down (``a.b``)."""
    rows = []
    for key, value in data.items():
        inner = value.items() if isinstance(value, dict) else [("", value)]
        rows += [{"setting": f"{key}.{k}" if k else str(key), "value": str(v)}
                 for k, v in inner if not isinstance(v, dict | list)]
    return pd.DataFrame(rows, columns=["setting", "value"])


def _external(sec: Section, files: list[Path], limit: int, what: str) -> None:
    """Embed up to ``limit`` PNGs written by other rules (not copied to the figures folder)."""
    for path in files[:limit]:
        sec.add(figure_tag(path.read_bytes(), f"{what}: {path.name}", path.name))
    if len(files) > limit:
        sec.add(paragraph(f"{len(files) - limit} more {what} files in {files[0].parent}."))


@section("post")
def post_section(ctx: ReportContext) -> Section:
    sec, p = Section("post", "Post-processing"), ctx.paths
    found = [existing(x) for x in (*p.thresholds.values(), *p.threshold_curves.values(), p.crf,
                                   p.ablation)] + pngs(p.crf_panels)
    if not any(found):
        sec.add(not_run("Post-processing (thresholds, CRF, ablation)"))
        return sec
    for task in ctx.tasks:
        curves = read_csv(p.threshold_curves.get(task))
        if curves is None:
            sec.add(not_run(f"{task} threshold tuning"))
            continue
        sec.figure(f"{task}_threshold_curves",
                   ctx.png(F.threshold_curves_figure(curves, task, ctx.thresholds(task))),
                   f"{task}: out-of-fold score against threshold per class; dots: chosen.")
    crf = read_yaml(p.crf)
    if isinstance(crf, dict):
        sec.add("<h3>CRF</h3>" + table(scalars(crf)) + collapsed(
            "crf.yaml in full", preformatted(yaml.safe_dump(crf, sort_keys=False))))
    else:
        sec.add(not_run("CRF tuning"))
    panels = pngs(p.crf_panels)
    _external(sec, panels, ctx.options.max_panels, "CRF before/after")
    sec.add("" if panels else not_run("CRF before/after panels"))
    ablation = read_csv(p.ablation)
    sec.add("<h3>Ablation</h3>" + (table(ablation) if ablation is not None
                                    else not_run("Ablation")))
    return sec


@section("attacks")
def attacks_section(ctx: ReportContext) -> Section:
    sec, p = Section("attacks", "Adversarial attacks"), ctx.paths
    summary = read_csv(p.attacks_summary)
    plots = pngs(p.attacks_dir, "*success_vs_eps*.png")
    panels = pngs(Path(p.attacks_dir) / "panels" if p.attacks_dir else None)
    if summary is None and not plots and not panels:
        sec.add(not_run("Attacks", "no attacks configured or run"))
        return sec
    if summary is not None:
        needed = {"task", "attack", "targeted", "epsilon", "success_rate"}
        if not plots and needed <= set(summary.columns):  # draw it only if the stage did not
            sec.figure("success_vs_eps", ctx.png(F.attack_success_figure(summary)),
                       "Attack success rate against the perturbation budget ε.")
        sec.add(table(summary))
    else:
        sec.add(not_run("Attack summary table"))
    _external(sec, plots, ctx.options.max_panels, "success vs ε")
    _external(sec, panels, ctx.options.max_panels, "attack example")
    return sec


@section("submission")
def submission_section(ctx: ReportContext) -> Section:
    sec = Section("submission", "Test submission")
    scores = read_yaml(ctx.paths.score)
    if not scores:
        sec.add(not_run("Scoring on a labelled test split", "the test labels are hidden or "
                        "the submission has not been written"))
        return sec
    rows = pd.DataFrame([{"submission": name, "Kaggle score": s.get("score"),
                          "classification": s.get("classification"),
                          "segmentation": s.get("segmentation")} for name, s in scores.items()
                         if isinstance(s, dict)])  # beside them: the partial-grid note
    sec.add(table(rows, highlight=list(rows["submission"] == "ours")))
    if scores.get("partial"):
        failed = list(scores.get("failed_cells") or [])
        sec.add(paragraph(f"This submission comes from a partial grid: {len(failed)} cells "
                          f"failed ({', '.join(map(str, failed))})."))
    return sec


@section("runtime")
@needing("Runtime", lambda ctx: ctx.stages, ("Runtime", "no Snakemake benchmark files"))
def runtime_section(ctx: ReportContext, sec: Section, stages: pd.DataFrame) -> None:
    gpu = stages.loc[stages["gpu_stage"], "wall_h"].sum()
    sec.add(paragraph(
        f"{int(stages['jobs'].sum())} benchmarked jobs: {stages['wall_h'].sum():.3f} wall-hours, "
        f"{stages['cpu_h'].sum():.3f} CPU-hours; GPU-hours {gpu:.3f} (wall time of the stages "
        f"{', '.join(ctx.options.gpu_stages)}, which use the GPU when the job has one; on a "
        "CPU-only run they ran on CPU)."))
    sec.add(table(stages, digits=3))
    sec.figure("runtime", ctx.png(F.runtime_figure(stages)),
               "Wall time and peak memory per stage (Snakemake benchmark files); GPU stages "
               "orange.")


@section("provenance")
def provenance_section(ctx: ReportContext) -> Section:
    sec = Section("provenance", "Provenance")
    facts = {"code version (git)": git_version(ctx.paths.repo), **platform_summary(),
             **package_versions()}
    sec.add(table(pd.DataFrame({"what": list(facts), "value": list(facts.values())})))
    _graph(sec, ctx.paths.rulegraph, "rulegraph", "Rule graph", ctx.options.dpi,
           "The workflow's rule graph (snakemake --rulegraph).")
    _graph(sec, ctx.paths.dag, "dag", "Job DAG", ctx.options.dpi,
           "The job DAG (snakemake --dag) when this run started; jobs already done are dashed.",
           max_nodes=MAX_DAG_JOBS)
    sec.add("<h3>Configuration</h3>" + (preformatted(yaml.safe_dump(ctx.config, sort_keys=False))
                                        if ctx.config else not_run("Configuration dump")))
    return sec


def _graph(sec: Section, path: str | None, name: str, what: str, dpi: int, caption: str,
           max_nodes: int | None = None) -> None:
    """A captured DOT graph drawn by Graphviz; "not run" when the file holds none, a line
    instead of the figure past ``max_nodes`` nodes, an error line when dot is missing."""
    dot = Path(path).read_text() if existing(path) else ""
    if not dot.startswith("digraph"):
        sec.add(not_run(what, unavailable_reason(dot)))
        return
    nodes = count_nodes(dot)
    if max_nodes is not None and nodes > max_nodes:
        sec.add(paragraph(f"{what}: {nodes} jobs, more than {max_nodes}, so only the rule graph "
                          "is shown (make dag draws the job DAG as dag.svg)."))
        return
    try:
        sec.figure(name, render_dot(dot, dpi=dpi), caption)
    except GraphvizError as err:
        sec.add(error_line(what, err))


def _spoken(what: str, speak: Callable[[], list[str]]) -> list[str]:
    """Sentences of one part; a part whose input cannot be read is left out (its own section
    shows the error)."""
    try:
        return speak()
    except Exception as exc:  # the discussion is a summary: never the place an error surfaces
        log.warning("discussion leaves out %s: %s", what, exc)
        return []


def discussion_sentences(ctx: ReportContext) -> list[str]:
    def frame(path: str | None, speak: Callable[[pd.DataFrame], list[str]]) -> list[str]:
        data = read_csv(path)
        return speak(data) if data is not None else []

    parts = {
        "leaderboard": lambda: talk.leaderboard_sentences(ctx.board)
        if ctx.board is not None else [],
        "per-class scores": lambda: talk.per_class_sentences(ctx.evals),
        "ablation": lambda: frame(ctx.paths.ablation, talk.ablation_sentences),
        "attacks": lambda: frame(ctx.paths.attacks_summary, talk.attack_sentences),
        "test score": lambda: talk.score_sentences(read_yaml(ctx.paths.score) or {}),
        "runtime": lambda: talk.runtime_sentences(ctx.stages) if ctx.stages is not None else [],
    }
    return [s for what, speak in parts.items() for s in _spoken(what, speak)]


@section("discussion")
def discussion_section(ctx: ReportContext) -> Section:
    sec = Section("discussion", "Discussion")
    sentences = discussion_sentences(ctx)
    if not sentences:
        sec.add(not_run("Discussion", "no measured results yet"))
        return sec
    sec.add(paragraph("A draft written from the measured results; edit discussion.md beside "
                      "this page."))
    sec.add(bullet_list(sentences))
    return sec
