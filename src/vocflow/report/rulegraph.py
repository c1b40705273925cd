"""The workflow's rule graph: capture Snakemake's DOT text, draw it as a PNG.

Graphviz ``dot`` draws it when installed; otherwise a layered layout in matplotlib does, so the
report never depends on graphviz.
"""

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
from vocflow.report.figures import Fig, plt, to_png

log = logging.getLogger(__name__)
NODE = re.compile(r'^\s*(\w+)\s*\[\s*label\s*=\s*"([^"]*)"', re.M)
EDGE = re.compile(r"^\s*(\w+)\s*->\s*(\w+)", re.M)
UNAVAILABLE = "// rule graph unavailable"


def capture_rule_graph(argv: Sequence[str], out: str | Path, timeout: int = 600) -> None:
    """Run ``argv`` (a ``snakemake --rulegraph`` command list, no shell) and keep its DOT text.

    Failure is not fatal: the file then holds one ``// rule graph unavailable: ...`` comment
    and the report's provenance section says so.
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
        log.warning("rule graph not captured: %s", exc)
        text = f"{UNAVAILABLE}: {' '.join(str(exc).split())}\n"
    write_text(out, text)


def write_rule_graph(snakefile: str | Path, workdir: str | Path, config: Mapping[str, Any],
                     out: str | Path, enabled: bool = True) -> None:
    """DOT rule graph of the workflow under ``config`` (dumped to a temporary --configfile, so
    command-line overrides of the running workflow apply too), via ``python -m snakemake``."""
    if not enabled:
        write_text(out, f"{UNAVAILABLE}: switched off (report.rulegraph: false)\n")
        return
    with tempfile.TemporaryDirectory() as tmp:
        configfile = Path(tmp) / "config.yaml"
        configfile.write_text(yaml.safe_dump(dict(config), sort_keys=False))
        capture_rule_graph([sys.executable, "-m", "snakemake", "--rulegraph", "--nolock",
                            "--snakefile", str(snakefile), "--directory", str(workdir),
                            "--configfile", str(configfile)], out)


def parse_dot(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Nodes (id -> label) and edges (from id, to id) of a ``snakemake --rulegraph`` DOT."""
    nodes = dict(NODE.findall(text))
    edges = [(a, b) for a, b in EDGE.findall(text) if a in nodes and b in nodes]
    return nodes, edges


def layers(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layer of each node from the sources (edges point producer -> consumer)."""
    depth = dict.fromkeys(nodes, 0)
    for _ in range(len(nodes)):  # relax; a DAG settles within len(nodes) rounds
        changed = False
        for a, b in edges:
            if depth[b] < depth[a] + 1:
                depth[b], changed = depth[a] + 1, True
        if not changed:
            break
    return depth


def order_layers(depth: dict[str, int], edges: Sequence[tuple[str, str]],
                 n_layers: int) -> dict[int, list[str]]:
    """Nodes per layer, each layer sorted by the mean position of its producers (barycentre
    heuristic): fewer crossing arrows than alphabetical order."""
    by_layer = {d: sorted(n for n in depth if depth[n] == d) for d in range(n_layers)}
    parents: dict[str, list[str]] = {n: [] for n in depth}
    for a, b in edges:
        parents[b].append(a)
    for d in range(1, n_layers):
        where = {n: i / max(len(by_layer[depth[n]]), 1) for n in depth
                 for i in [by_layer[depth[n]].index(n)]}
        by_layer[d].sort(key=lambda n: sum(where[p] for p in parents[n]) / len(parents[n])
                         if parents[n] else 0.5)
    return by_layer


def draw_rule_graph(nodes: dict[str, str], edges: Sequence[tuple[str, str]]) -> Fig:
    """Boxes per layer (top: inputs, bottom: ``all``), arrows from producer to consumer."""
    depth = layers(list(nodes), edges)
    n_layers = max(depth.values(), default=0) + 1
    by_layer = order_layers(depth, edges, n_layers)
    width = max((len(v) for v in by_layer.values()), default=1)
    pos = {n: ((k + 1) / (len(members) + 1), 1 - (d + 0.5) / n_layers)
           for d, members in by_layer.items() for k, n in enumerate(members)}
    fig, ax = plt.subplots(figsize=(max(6.0, 2.2 * width), 0.9 * n_layers + 0.5))
    for a, b in edges:
        ax.annotate("", xy=pos[b], xytext=pos[a],
                    arrowprops={"arrowstyle": "->", "color": "grey", "shrinkA": 9, "shrinkB": 9})
    for n, (x, y) in pos.items():
        ax.text(x, y, nodes[n], ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "#eef3fb", "edgecolor": "#4c72b0"})
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.axis("off")
    return fig


def rule_graph_png(text: str, dpi: int = 80) -> bytes | None:
    """PNG of the DOT ``text``; None when it holds no rule graph."""
    nodes, edges = parse_dot(text)
    if not nodes:
        return None
    dot = shutil.which("dot")
    if dot:
        done = subprocess.run([dot, "-Tpng", f"-Gdpi={dpi}"], input=text.encode(),
                              capture_output=True, timeout=120, check=False)
        if done.returncode == 0 and done.stdout.startswith(b"\x89PNG"):
            return done.stdout
        log.warning("graphviz failed (%s); drawing the rule graph with matplotlib",
                    done.stderr.decode(errors="replace").strip()[-200:])
    return to_png(draw_rule_graph(nodes, edges), dpi=dpi)

