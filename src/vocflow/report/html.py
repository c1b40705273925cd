"""HTML primitives of the standalone report: figures, tables, "not run" lines, the page.

Every image is a data URI, so ``index.html`` is one file that opens offline. Each ``<img>`` marks
itself ``data-ok="1"`` on load and ``"0"`` on error, and a load handler counts broken images on
``<body>``; a headless browser (the report's test) reads those marks from the DOM.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

STYLE = """
body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222;line-height:1.4}
nav{font-size:14px;margin-bottom:1em}nav a{margin-right:.8em}
section{border-top:2px solid #ddd;margin-top:2em}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#f3f3f3}
td.text{text-align:left}tr.best{background:#e6f4e6;font-weight:bold}
tr.failed{background:#fbe9e9;color:#a00}
.banner{background:#fff3cd;border:1px solid #e0b400;padding:.6em .8em;font-weight:bold}
.missing{color:#888;font-style:italic}.error{color:#b00}
figure{margin:1em 0}figcaption{font-size:13px;color:#555}img{max-width:100%}
pre{background:#f6f6f6;padding:.6em;font-size:12px;overflow-x:auto}.scroll{overflow-x:auto}
"""
BEST = ' class="best"'
FAILED = ' class="failed"'
# Counts images that failed to decode once everything has loaded (read by the browser test).
CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0; });
  document.body.setAttribute('data-images', String(imgs.length));
  document.body.setAttribute('data-broken-images', String(broken.length));
  document.body.setAttribute('data-sections',
                             String(document.querySelectorAll('section').length));
});
"""


@dataclass
class Figure:
    """One PNG of a section: ``name`` is its file stem under the figures folder."""

    name: str
    png: bytes
    caption: str


@dataclass
class Section:
    """One report section: its anchor ``key``, title, HTML body and the figures it embeds."""

    key: str
    title: str
    parts: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)

    def figure(self, name: str, png: bytes, caption: str) -> None:
        self.figures.append(Figure(name, png, caption))
        self.parts.append(figure_tag(png, caption, f"{self.key}/{name}"))


def esc(value: object) -> str:
    return html.escape(str(value))


def figure_tag(png: bytes, caption: str, name: str) -> str:
    data = base64.b64encode(png).decode()
    return (f'<figure><img alt="{esc(caption)}" data-figure="{esc(name)}" '
            'onload="this.dataset.ok=1" onerror="this.dataset.ok=0" '
            f'src="data:image/png;base64,{data}"><figcaption>{esc(caption)}</figcaption></figure>')


def not_run(what: str, hint: str = "") -> str:
    extra = f" ({esc(hint)})" if hint else ""
    return f'<p class="missing">{esc(what)}: not run{extra}.</p>'


def error_line(what: str, err: Exception) -> str:
    return f'<p class="error">{esc(what)} could not be shown: {esc(err)}</p>'


def paragraph(text: str) -> str:
    return f"<p>{esc(text)}</p>"


def _cell(value: object, digits: int) -> str:
    if isinstance(value, float):
        return "<td>–</td>" if pd.isna(value) else f"<td>{value:.{digits}f}</td>"
    if isinstance(value, int):
        return f"<td>{value}</td>"
    return f'<td class="text">{esc(value)}</td>'


def table(frame: pd.DataFrame, digits: int = 4, highlight: Sequence[bool] | None = None,
          failed: Sequence[bool] | None = None) -> str:
    """An HTML table of ``frame`` (index dropped); rows flagged in ``highlight`` get class best,
    those flagged in ``failed`` class failed."""
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    flags = list(highlight) if highlight is not None else [False] * len(frame)
    bad = list(failed) if failed is not None else [False] * len(frame)
    rows = []
    for flag, fail, values in zip(flags, bad, frame.itertuples(index=False), strict=True):
        cells = "".join(_cell(v.item() if hasattr(v, "item") else v, digits) for v in values)
        mark = BEST if flag else FAILED if fail else ""
        rows.append(f"<tr{mark}>{cells}</tr>")
    # Wide tables (the attack summary) scroll sideways instead of overflowing the page.
    return f'<div class="scroll"><table><tr>{head}</tr>{"".join(rows)}</table></div>'


def bullet_list(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def preformatted(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def collapsed(summary: str, inner_html: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{inner_html}</details>"


def page(title: str, sections: Sequence[Section], banner: str = "") -> str:
    """The whole page; ``banner``: a warning shown above everything (a partial grid)."""
    nav = "".join(f'<a href="#{esc(s.key)}">{esc(s.title)}</a>' for s in sections)
    top = f'<p class="banner" data-banner="1">{esc(banner)}</p>' if banner else ""
    body = "".join(f'<section id="{esc(s.key)}" data-section="{esc(s.key)}">'
                   f"<h2>{esc(s.title)}</h2>{''.join(s.parts)}</section>" for s in sections)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>{top}<nav>{nav}</nav>{body}"
            f"<script>{CHECK_SCRIPT}</script></body></html>")
