"""A first draft of the discussion, in plain sentences computed from the measured results.

Each function returns sentences for one part of the study ([] when that part has no data);
the user edits the result (``discussion.md``) rather than writing it from scratch.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from vocflow.artifacts import BASELINE_MODEL
from vocflow.report.stats import OofEval


def _factor_sentence(trained: pd.DataFrame, factor: str, metric: str) -> str | None:
    """How much the choice of ``factor`` (model or loss) moved the metric, averaged over the
    other factor."""
    means = trained.groupby(factor)["score_mean"].mean().dropna().sort_values(ascending=False)
    if len(means) < 2:
        return None
    top, low = means.index[0], means.index[-1]
    return (f"Averaged over the other choices, {factor} {top} gave {metric} {means.iloc[0]:.3f} "
            f"and {factor} {low} {means.iloc[-1]:.3f}, a difference of "
            f"{means.iloc[0] - means.iloc[-1]:+.3f}.")


def leaderboard_sentences(board: pd.DataFrame) -> list[str]:
    out = []
    for task in sorted(board["task"].unique()):
        rows = board[board["task"] == task].sort_values("rank")
        trained = rows[(rows["model"] != BASELINE_MODEL) & rows["score_mean"].notna()]
        if trained.empty:
            continue
        best, metric = trained.iloc[0], trained.iloc[0]["selection_metric"]
        std = 0.0 if pd.isna(best["score_std"]) else best["score_std"]
        text = (f"For {task}, the best cell is {best['model']} / {best['loss']} with {metric} "
                f"{best['score_mean']:.3f} ± {std:.3f} over {best['folds']} folds")
        base = rows[rows["model"] == BASELINE_MODEL]["score_mean"]
        if len(base):
            text += (f", {best['score_mean'] - base.iloc[0]:+.3f} against the random baseline "
                     f"({base.iloc[0]:.3f})")
        out.append(text + ".")
        if len(trained) > 1:
            gap = best["score_mean"] - trained.iloc[1]["score_mean"]
            kind = "larger" if gap > std else "not larger"
            out.append(f"It leads the runner-up ({trained.iloc[1]['model']} / "
                       f"{trained.iloc[1]['loss']}) by {gap:.3f}, {kind} than its fold "
                       f"standard deviation ({std:.3f}).")
        out += [s for f in ("model", "loss") if (s := _factor_sentence(trained, f, metric))]
    return out


def per_class_sentences(evals: Mapping[str, OofEval], n: int = 3) -> list[str]:
    out = []
    for task, ev in sorted(evals.items()):
        col = "ap" if task == "classification" else "iou"
        scores = ev.per_class[ev.per_class["class"] != "background"].dropna(subset=[col])
        if len(scores) < 2:
            continue
        ranked = scores.sort_values(col, ascending=False)
        if ranked[col].iloc[0] - ranked[col].iloc[-1] < 0.005:  # nothing to rank
            out.append(f"For {task}, every class has about the same out-of-fold "
                       f"{col.upper()} ({ranked[col].iloc[0]:.2f}).")
            continue
        fmt = ", ".join
        easy = fmt(f"{r['class']} ({r[col]:.2f})" for _, r in ranked.head(n).iterrows())
        hard = fmt(f"{r['class']} ({r[col]:.2f})" for _, r in ranked.tail(n)[::-1].iterrows())
        out.append(f"For {task}, the selected cell's out-of-fold {col.upper()} is highest for "
                   f"{easy} and lowest for {hard}.")
    return out


def ablation_sentences(ablation: pd.DataFrame, metric: str = "kaggle") -> list[str]:
    out = []
    for task, steps in ablation.groupby("task", sort=True):
        steps = steps.dropna(subset=[metric]).reset_index(drop=True)
        if len(steps) < 2:
            continue
        gains = steps[metric].diff().iloc[1:]
        top = int(gains.idxmax())
        first, last = steps.iloc[0], steps.iloc[-1]
        out.append(f"For {task}, post-processing moved the {metric} score from "
                   f"{first[metric]:.3f} ({first['step']}) to {last[metric]:.3f} "
                   f"({last['step']}), {last[metric] - first[metric]:+.3f}; the largest single "
                   f"step was {steps.at[top, 'step']} ({gains[top]:+.3f}).")
    return out


def attack_sentences(summary: pd.DataFrame) -> list[str]:
    out = []
    for task, rows in summary.dropna(subset=["success_rate"]).groupby("task", sort=True):
        top = rows[rows["epsilon"] == rows["epsilon"].max()]
        worst = top.loc[top["success_rate"].idxmax()]
        kind = "targeted " if bool(worst["targeted"]) else ""
        crf = " (with CRF)" if bool(worst.get("crf", False)) else ""
        metric = worst.get("metric", "the task metric")
        out.append(f"For {task}, the strongest attack at the largest budget (ε = "
                   f"{worst['epsilon']:g}) is {kind}{worst['attack']}{crf}: it succeeds on "
                   f"{worst['success_rate']:.0%} of images and moves {metric} from "
                   f"{worst['metric_clean']:.3f} to {worst['metric_adv']:.3f}.")
    return out


def score_sentences(scores: Mapping[str, Mapping[str, float]]) -> list[str]:
    if "ours" not in scores:
        return []
    text = f"On the labelled test split the submission scores {scores['ours']['score']:.3f}"
    if "random" in scores:
        text += f", the random baseline {scores['random']['score']:.3f}"
    return [text + "."]


def runtime_sentences(stages: pd.DataFrame) -> list[str]:
    if stages.empty or stages["wall_h"].sum() <= 0:
        return []
    total = stages["wall_h"].sum()
    top = stages.loc[stages["wall_h"].idxmax()]
    gpu = stages.loc[stages["gpu_stage"], "wall_h"].sum()
    return [f"The benchmarked jobs ({int(stages['jobs'].sum())}) took {total:.2f} wall-hours; "
            f"{top['stage']} took the largest share ({top['wall_h'] / total:.0%}), and GPU "
            f"stages {gpu:.2f} hours."]
