"""The workflow's graphs for the report: capture Snakemake's DOT text (``--rulegraph``, one node
per rule, and ``--dag``, one node per job), draw it with Graphviz ``dot``."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from vocflow.atomic import write_text
from vocflow.errors import VocflowError

log = logging.getLogger(__name__)
NODE = re.compile(r'^\s*\w+\s*\[\s*label\s*=\s*"', re.M)
UNAVAILABLE = "// graph unavailable"
# A bigger job DAG draws as an unreadable ribbon (and dot takes minutes): the report then shows
# the rule graph only, and `make dag` still draws it as SVG.
MAX_DAG_JOBS = 300
INSTALL = "install Graphviz (apt-get install graphviz, or conda install -c conda-forge graphviz)"


class GraphvizError(VocflowError):
    """Graphviz ``dot`` is missing or could not draw a graph."""


def capture_dot(argv: Sequence[str], out: str | Path, timeout: int = 600) -> None:
    """Run ``argv`` (a ``snakemake --rulegraph`` or ``--dag`` command list, no shell) and keep
    its DOT text.

    Failure is not fatal: the file then holds one ``// graph unavailable: ...`` comment and the
    report's provenance section says so.
    """
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              check=False)
        start = done.stdout.find("digraph")
        if done.returncode != 0 or start < 0:
            reason = (done.stderr.strip().splitlines() or ["no DOT output"])[-1]
            raise RuntimeError(f"exit {done.returncode}: {reason}")
        text = done.stdout[start:]
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        log.warning("graph not captured (%s): %s", out, exc)
        text = f"{UNAVAILABLE}: {' '.join(str(exc).split())}\n"
    write_text(out, text)


def write_graphs(snakefile: str | Path, workdir: str | Path, config: Mapping[str, Any],
                 rulegraph: str | Path, dag: str | Path, enabled: bool = True) -> None:
    """DOT rule graph and job DAG of the workflow under ``config`` (dumped to a temporary
    --configfile, so command-line overrides of the running workflow apply too), via
    ``python -m snakemake``. The DAG is the one when this job runs: jobs already done are
    dashed."""
    if not enabled:
        for out in (rulegraph, dag):
            write_text(out, f"{UNAVAILABLE}: switched off (report.rulegraph: false)\n")
        return
    with tempfile.TemporaryDirectory() as tmp:
        configfile = Path(tmp) / "config.yaml"
        configfile.write_text(yaml.safe_dump(dict(config), sort_keys=False))
        base = [sys.executable, "-m", "snakemake", "--nolock", "--snakefile", str(snakefile),
                "--directory", str(workdir), "--configfile", str(configfile)]
        capture_dot([*base, "--rulegraph"], rulegraph)
        capture_dot([*base, "--dag"], dag)


def unavailable_reason(text: str) -> str:
    """Why a captured file holds no graph ("" when it does or says nothing)."""
    return text.strip()[len(UNAVAILABLE) + 2:] if text.startswith(UNAVAILABLE) else ""


def count_nodes(text: str) -> int:
    """Nodes (rules or jobs) of a Snakemake DOT graph."""
    return len(NODE.findall(text))


def render_dot(text: str, fmt: str = "png", dpi: int = 80, timeout: int = 300) -> bytes:
    """``text`` drawn by Graphviz ``dot -T{fmt}``; a GraphvizError when dot is missing or
    fails."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizError(f"Graphviz 'dot' is not on PATH: {INSTALL}")
    try:
        done = subprocess.run([dot, f"-T{fmt}", f"-Gdpi={dpi}"], input=text.encode(),
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise GraphvizError(f"Graphviz 'dot' took over {timeout} s on a graph of "
                            f"{count_nodes(text)} nodes") from exc
    if done.returncode != 0 or not done.stdout:
        reason = " ".join(done.stderr.decode(errors="replace").split())[-200:]
        raise GraphvizError(f"Graphviz 'dot' failed (exit {done.returncode}): {reason}")
    return done.stdout
