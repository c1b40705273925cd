"""A self-contained ``index.html`` from the files under ``results/`` (figures embedded).

Sections whose inputs do not exist yet render as a short "not run" line, so the report builds
for whatever part of the study has run.
"""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd
import yaml

from vocflow.io import write_text
from vocflow.report.figures import learning_curves, read_histories, to_png

log = logging.getLogger(__name__)
STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
         "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
         "padding:3px 6px;text-align:right}tr.best{background:#e6f4e6;font-weight:bold}"
         ".missing{color:#888;font-style:italic}img{max-width:100%}")


def img_tag(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,' \
           f'{base64.b64encode(png).decode()}">'


def not_run(what: str) -> str:
    return f'<p class="missing">{html.escape(what)}: not run.</p>'


def leaderboard_table(board: pd.DataFrame, task: str) -> str:
    rows = board[board["task"] == task]
    metrics = [c[:-5] for c in rows.columns if c.endswith("_mean") and c != "score_mean"
               and rows[c].notna().any()]
    head = "".join(f"<th>{h}</th>" for h in ["rank", "model", "loss", "folds", *metrics])
    body = []
    for r in rows.itertuples():
        cls = ' class="best"' if r.rank == 1 and r.model != "random" else ""
        vals = "".join(f"<td>{getattr(r, m + '_mean'):.4f} ± {_std(getattr(r, m + '_std'))}</td>"
                       for m in metrics)
        body.append(f"<tr{cls}><td>{r.rank}</td><td>{html.escape(r.model)}</td>"
                    f"<td>{html.escape(r.loss)}</td><td>{r.folds}</td>{vals}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _std(value: float) -> str:
    return "–" if pd.isna(value) else f"{value:.4f}"


def score_section(score_yaml: str | Path | None) -> str:
    if not score_yaml or not Path(score_yaml).is_file():
        return not_run("Scoring on a labelled test split")
    scores = yaml.safe_load(Path(score_yaml).read_text())
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{s['score']:.4f}</td>"
                   f"<td>{s['classification']:.4f}</td><td>{s['segmentation']:.4f}</td></tr>"
                   for n, s in scores.items())
    return ("<table><tr><th>submission</th><th>Kaggle score</th><th>classification</th>"
            f"<th>segmentation</th></tr>{rows}</table>")


def build_report(leaderboard_csv: str | Path, metrics_paths: Iterable[str | Path],
                 selections: Mapping[str, str | Path], out_html: str | Path,
                 score_yaml: str | Path | None = None) -> None:
    board = pd.read_csv(leaderboard_csv)
    history = read_histories(metrics_paths)
    parts = ["<h1>vocflow study report</h1>", "<h2>Leaderboard</h2>"]
    for task in sorted(board["task"].unique()):
        selected = yaml.safe_load(Path(selections[task]).read_text()) if task in selections \
            else None
        parts.append(f"<h3>{task}</h3>{leaderboard_table(board, task)}")
        if selected:
            parts.append(f"<p>Selected: <b>{html.escape(selected['model'])} / "
                         f"{html.escape(selected['loss'])}</b> ({selected['metric']} "
                         f"{selected['mean']:.4f} ± {selected['std']:.4f}).</p>")
    parts.append("<h2>Learning curves</h2>")
    for task in sorted(board["task"].unique()):
        metric = board.loc[board["task"] == task, "selection_metric"].iloc[0]
        parts += [f"<h3>{task}</h3>",
                  img_tag(to_png(learning_curves(history, task, metric)), f"{task} curves")]
    parts += ["<h2>Test submission</h2>", score_section(score_yaml)]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>vocflow report</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")
    write_text(out_html, page)
    log.info("report written to %s", out_html)
