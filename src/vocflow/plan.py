"""``vocflow plan``: what a Snakemake run would do, before it spends GPU hours.

Two Snakemake subprocesses in the workflow's directory, run at once and with the same extra
arguments (targets, --profile, --configfile ...): a dry run, which lists every pending job with
its rule, wildcards, resources and benchmark file, and ``--dag``, which lists every job of the
DAG (a dashed node is a job whose outputs are present and up to date). From them come

* the training cells (TRAINING_RULES) done and to run;
* the GPU jobs to submit: pending jobs whose resources ask for a GPU (the rule files'
  ``gpu_resources()``, or a profile's set-resources), so no list of GPU rules is kept here;
* their GPU-hours, estimated from the Snakemake benchmark files of finished training cells
  (``{benchmarks}/{task}/{model}/{loss}/fold{k}.tsv``, wall seconds in column ``s``).
"""

from __future__ import annotations

import csv
import logging
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from vocflow.artifacts import TASKS
from vocflow.errors import VocflowError, one_line

log = logging.getLogger(__name__)

# Grid cells, one rule per task (train.smk), and the refits of the selected recipe (refit.smk).
TRAIN_RULES = {f"train_{task}": task for task in TASKS}
REFIT_RULE = "refit"
TRAINING_RULES = (*TRAIN_RULES, REFIT_RULE)
# Resources that count GPUs: Snakemake's standard `gpu` (what gpu_resources() sets), the slurm
# plugin's `gpus`; a `gres` naming gpu counts as one.
GPU_KEYS = ("gpu", "gpus")
JOB_HEAD = re.compile(r"^\s*(?:local)?(?:rule|checkpoint) (\w+):\s*$")
JOB_FIELD = re.compile(r"^\s+(\w+): (.*)$")
DAG_NODE = re.compile(r'^\s*\d+\[label = "([^"]*)".*?style="([^"]*)"', re.M)


# How an estimate was made (Estimate.basis), in the words the plan prints.
BASES = {"model": "mean wall time of the finished cells of their task and model",
         "task": "of their task (no finished cell of their model)",
         "own": "their own earlier benchmark"}


class PlanError(VocflowError):
    """Snakemake could not plan the run (bad config, missing input, syntax error)."""


@dataclass(frozen=True)
class Job:
    """One pending job of a dry run."""

    rule: str
    wildcards: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)
    benchmark: str | None = None

    @property
    def gpus(self) -> int:
        """GPUs the job asks for (0: a CPU job)."""
        for key in GPU_KEYS:
            if key in self.resources:
                try:
                    return int(float(self.resources[key]))
                except ValueError:  # e.g. gpus="a100:2" (slurm plugin syntax)
                    return int(self.resources[key].rpartition(":")[2] or 1)
        return 1 if "gpu" in self.resources.get("gres", "") else 0


@dataclass(frozen=True)
class Estimate:
    """Expected wall seconds of one pending GPU job and where the figure comes from."""

    seconds: float | None
    basis: str  # "model", "task", "own" (the job's earlier benchmark) or "unknown"


@dataclass(frozen=True)
class Plan:
    """Per training rule: jobs done and to run; the pending GPU jobs with their estimates."""

    done: dict[str, int]
    to_run: dict[str, int]
    pending: int  # every pending job, GPU or not
    gpu_jobs: list[tuple[Job, Estimate]]


# ----------------------------------------------------------------------------- parsing


def _pairs(text: str) -> dict[str, str]:
    """``a=1, b=x y`` -> {a: "1", b: "x y"} (Snakemake's wildcards and resources lines)."""
    items = (part.partition("=") for part in text.split(", "))
    return {key.strip(): value.strip() for key, sep, value in items if sep}


def parse_dry_run(text: str) -> list[Job]:
    """Pending jobs of ``snakemake --dry-run`` output (group jobs' members included)."""
    jobs: list[Job] = []
    rule: str | None = None
    fields: dict[str, str] = {}
    for line in [*text.splitlines(), "rule end:"]:
        head = JOB_HEAD.match(line)
        if head or line.startswith(("Job stats", "[")) or "Group job" in line:
            if rule is not None:
                jobs.append(Job(rule, _pairs(fields.get("wildcards", "")),
                                _pairs(fields.get("resources", "")), fields.get("benchmark")))
            rule, fields = (head.group(1), {}) if head else (None, {})
            continue
        found = JOB_FIELD.match(line) if rule is not None else None
        if found:
            fields[found.group(1)] = found.group(2)
    return jobs


def parse_dag(text: str) -> list[tuple[str, bool]]:
    """(rule, done) of every job of ``snakemake --dag`` DOT output; Snakemake draws jobs that
    need not run dashed."""
    return [(label.split("\\n")[0], "dashed" in style) for label, style in DAG_NODE.findall(text)]


# ----------------------------------------------------------------------------- benchmarks


def benchmark_seconds(path: Path) -> float | None:
    """Mean wall seconds (column ``s``) of a Snakemake benchmark file; None if unreadable."""
    try:
        with path.open(newline="") as fh:
            values = [float(row["s"]) for row in csv.DictReader(fh, delimiter="\t")]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        log.warning("ignoring benchmark %s (%s); a finished job rewrites it", path,
                    one_line(exc, 80))
        return None
    return mean(values) if values else None


def cell_seconds(folder: str | Path) -> dict[tuple[str, str], list[float]]:
    """(task, model) -> wall seconds of each finished training cell with a benchmark file
    ``folder/{task}/{model}/{loss}/fold{k}.tsv``."""
    root = Path(folder)
    found: dict[tuple[str, str], list[float]] = defaultdict(list)
    for path in sorted(root.glob("*/*/*/*.tsv")):
        task, model = path.relative_to(root).parts[:2]
        seconds = benchmark_seconds(path)
        if seconds is not None:
            found[(task, model)].append(seconds)
    return dict(found)


def estimate(job: Job, cells: Mapping[tuple[str, str], Sequence[float]],
             workdir: str | Path = ".") -> Estimate:
    """Wall seconds of a pending GPU job: a grid cell takes the mean of the finished cells of
    its task and model, else of its task; a refit that of its task (its model is chosen by
    select, later); any other job its own earlier benchmark; else unknown."""
    task = TRAIN_RULES.get(job.rule) or (job.wildcards.get("task") if job.rule == REFIT_RULE
                                         else None)
    if task is not None:
        model = job.wildcards.get("model") if job.rule in TRAIN_RULES else None
        if model is not None and cells.get((task, model)):
            return Estimate(mean(cells[(task, model)]), "model")
        of_task = [s for (t, _), values in cells.items() if t == task for s in values]
        return Estimate(mean(of_task), "task") if of_task else Estimate(None, "unknown")
    own = Path(workdir) / job.benchmark if job.benchmark else None
    seconds = benchmark_seconds(own) if own is not None and own.is_file() else None
    return Estimate(seconds, "own") if seconds is not None else Estimate(None, "unknown")


# ----------------------------------------------------------------------------- the plan


def snakemake_outputs(workdir: str | Path, args: Sequence[str]) -> tuple[str, str]:
    """Output of ``snakemake --dry-run`` and of ``snakemake --dag`` with ``args``, run at once
    in ``workdir``; a PlanError with Snakemake's last line when either fails."""
    # Options taking optional values go first, so a target (e.g. `all`) is never read as one.
    base = [sys.executable, "-m", "snakemake"]
    commands = {"--dry-run": [*base, "--quiet", "reason", "--dry-run", "--nolock", *args],
                "--dag": [*base, "--dag", "dot", "--nolock", *args]}
    procs = {name: subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name, cmd in commands.items()}
    done = {name: proc.communicate() for name, proc in procs.items()}  # both end before a raise
    out = {}
    for name, (stdout, stderr) in done.items():
        proc = procs[name]
        if proc.returncode != 0:
            # Snakemake's error is the last line on stderr; stdout holds its notes.
            lines = [ln for ln in (stderr or stdout).splitlines() if ln.strip()]
            raise PlanError(f"snakemake {name} in {Path(workdir).resolve()} failed (exit "
                            f"{proc.returncode}): {one_line(lines[-1] if lines else '', 300)}")
        out[name] = stdout + stderr
    return out["--dry-run"], out["--dag"]


def make_plan(dry_run: str, dag: str, benchmarks: str | Path, workdir: str | Path = ".") -> Plan:
    """The plan from a dry run's and ``--dag``'s output and the training benchmarks folder."""
    jobs = parse_dry_run(dry_run)
    done: dict[str, int] = dict.fromkeys(TRAINING_RULES, 0)
    for rule, finished in parse_dag(dag):
        if rule in done and finished:
            done[rule] += 1
    to_run = dict.fromkeys(TRAINING_RULES, 0)
    for job in jobs:
        if job.rule in to_run:
            to_run[job.rule] += 1
    cells = cell_seconds(benchmarks)
    gpu_jobs = [(job, estimate(job, cells, workdir)) for job in jobs if job.gpus > 0]
    return Plan(done=done, to_run=to_run, pending=len(jobs), gpu_jobs=gpu_jobs)


def plan_run(workdir: str | Path, args: Sequence[str], benchmarks: str | Path) -> Plan:
    """The plan of ``snakemake ARGS`` in ``workdir``; ``benchmarks`` relative to it."""
    dry_run, dag = snakemake_outputs(workdir, args)
    return make_plan(dry_run, dag, Path(workdir) / benchmarks, workdir)


# ----------------------------------------------------------------------------- the text


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    body = [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in [list(header), *body]) for i in range(len(header))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w)
                      in enumerate(zip(r, widths, strict=True))).rstrip()
            for r in [list(header), *body]]


def gpu_hours(plan: Plan) -> dict[str, tuple[int, float, int]]:
    """Per rule of the pending GPU jobs: (jobs, estimated GPU-hours, jobs without estimate)."""
    out: dict[str, tuple[int, float, int]] = {}
    for job, est in plan.gpu_jobs:
        n, hours, unknown = out.get(job.rule, (0, 0.0, 0))
        if est.seconds is None:
            out[job.rule] = (n + 1, hours, unknown + 1)
        else:
            out[job.rule] = (n + 1, hours + est.seconds * job.gpus / 3600.0, unknown)
    return out


def format_plan(plan: Plan) -> str:
    """The plan as the text ``vocflow plan`` prints."""
    lines = [f"Pending jobs: {plan.pending} ({len(plan.gpu_jobs)} on a GPU).", "",
             "Training cells:"]
    rules = [r for r in TRAINING_RULES if plan.done[r] or plan.to_run[r]]
    lines += _table(["rule", "done", "to run", "total"],
                    [(r, plan.done[r], plan.to_run[r], plan.done[r] + plan.to_run[r])
                     for r in rules] or [("(none in this DAG)", "", "", "")])
    per_rule = gpu_hours(plan)
    lines += ["", "GPU jobs to submit:"]
    rows = [(r, n, "?" if unknown == n else f"{h:.2f}", unknown)
            for r, (n, h, unknown) in per_rule.items()]
    total = (sum(v[0] for v in per_rule.values()), sum(v[1] for v in per_rule.values()),
             sum(v[2] for v in per_rule.values()))
    lines += _table(["rule", "jobs", "GPU-hours", "unknown"],
                    [*rows, ("total", total[0], f"{total[1]:.2f}", total[2])])
    lines += ["", f"Estimated GPU-hours: {total[1]:.2f} for {total[0] - total[2]} of "
              f"{total[0]} GPU jobs{_bases(plan)}; {total[2]} without an estimate (no finished "
              "cell or benchmark yet)."]
    return "\n".join(lines) + "\n"


def _bases(plan: Plan) -> str:
    """" (mean wall time of the finished cells of their model: N jobs, ...)"."""
    counts = {basis: sum(est.basis == basis for _, est in plan.gpu_jobs) for basis in BASES}
    parts = [f"{text}: {counts[b]} jobs" for b, text in BASES.items() if counts[b]]
    return f" ({'; '.join(parts)})" if parts else ""
