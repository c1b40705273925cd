"""Build the standalone study report: ``index.html`` (figures embedded), the figures as PNG
files (for ``snakemake --report``) and an editable ``discussion.md``.

Sections whose inputs do not exist yet render as a short "not run" line, so the report builds
for whatever part of the study has run.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vocflow.atomic import new_dir_mode, write_text
from vocflow.report.context import ReportContext
from vocflow.report.html import Section, error_line, page
from vocflow.report.sections import ORDER, SECTIONS, discussion_sentences, partial_banner
from vocflow.report.sources import ReportOptions, ReportPaths

log = logging.getLogger(__name__)
TITLE = "vocflow study report"


def render_sections(ctx: ReportContext, names: Sequence[str] = ORDER) -> list[Section]:
    """Every section in order; one that fails shows its error instead of hiding the others."""
    out = []
    for name in names:
        try:
            out.append(SECTIONS.build(name)(ctx))
        except Exception as exc:  # a malformed input of one stage must not sink the report
            log.exception("report section %s failed", name)
            sec = Section(name, name.replace("_", " ").capitalize())
            sec.add(error_line(f"Section {name}", exc))
            out.append(sec)
    return out


def banner(ctx: ReportContext) -> str:
    """The partial-grid banner; an input that cannot be read shows in its section instead."""
    try:
        return partial_banner(ctx)
    except Exception as exc:  # the banner is a summary: never the place an error surfaces
        log.warning("no partial-grid banner: %s", exc)
        return ""


def write_figures(sections: Sequence[Section], folder: str | Path) -> int:
    """Write each section's figures as ``folder/<section>/<name>.png``; replaces ``folder``."""
    dest = Path(folder)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    tmp.chmod(new_dir_mode())  # mkdtemp makes it private; the report is meant to be shared
    count = 0
    for sec in sections:
        for fig in sec.figures:
            (tmp / sec.key).mkdir(exist_ok=True)
            (tmp / sec.key / f"{fig.name}.png").write_bytes(fig.png)
            count += 1
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)  # only complete folders appear under the output name
    return count


def discussion_markdown(sentences: Sequence[str]) -> str:
    body = "\n".join(f"- {s}" for s in sentences) if sentences else "- (no measured results yet)"
    return ("# Discussion\n\n<!-- A draft computed from the measured results by vocflow; edit "
            f"freely. -->\n\n{body}\n")


def build_report(paths: ReportPaths | Mapping[str, Any], out_html: str | Path,
                 figures_dir: str | Path | None = None, discussion_md: str | Path | None = None,
                 options: ReportOptions | Mapping[str, Any] | None = None,
                 config: Mapping[str, Any] | None = None) -> list[Section]:
    """Render every section from ``paths`` and write the page (plus figures and discussion)."""
    if not isinstance(paths, ReportPaths):
        paths = ReportPaths.from_dict(dict(paths))
    if not isinstance(options, ReportOptions):
        options = ReportOptions.from_dict(dict(options or {}))
    ctx = ReportContext(paths, options, dict(config or {}))
    log.info("building the report from %s", paths.leaderboard or "(no leaderboard yet)")
    sections = render_sections(ctx)
    write_text(out_html, page(TITLE, sections, banner(ctx)))
    if figures_dir is not None:
        n = write_figures(sections, figures_dir)
        log.info("%d figures written to %s", n, figures_dir)
    if discussion_md is not None:
        write_text(discussion_md, discussion_markdown(discussion_sentences(ctx)))
    log.info("report written to %s", out_html)
    return sections
