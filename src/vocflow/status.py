"""Where a study stands (``vocflow status``): each grid cell's state, epoch, best score so far,
time spent and SLURM job, from what the jobs leave on disk. Read only: it never creates or
changes anything under results/ (no locks, no caches), so it can run beside the workflow.

What each cell ``{task}/{model}/{loss}/fold{k}`` is judged by:

- its outputs: best.pt, metrics.csv and oof.npz all present = done. vocflow.train rewrites
  metrics.csv after every epoch, so it alone holds the epochs done so far;
- its log, results/logs/train/{task}/{model}/{loss}/fold{k}.log, one attempt per "job started"
  line: where it runs (host, pid, SLURM job), its epoch lines, "resumed at", the ERROR line of
  a failure, the stop-signal warning of a preemption. Snakemake deletes a failed job's outputs
  (the log keeps its epochs) and, when it starts the job again, the log too (metrics.csv, its
  ``seconds`` column, then has the epochs of the earlier attempts);
- SLURM, where squeue and sacct exist: the executor plugin submits each job with the comment
  ``rule_train_{task}_wildcards_{model}_{loss}_{fold}``; squeue says queued or running, sacct how
  the cell's latest job ended;
- without SLURM, an attempt runs while its pid lives on this host (a process that started
  before the attempt did, not a reused pid); one on another host while its log keeps growing.

States: done; running; resumed (running again after an interruption); failed (the latest
attempt ended without its outputs: an error, a stop signal, a kill; or its SLURM job FAILED,
TIMEOUT, ...); pending (nothing yet, queued, or outputs removed after a success).
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vocflow.artifacts import TASKS
from vocflow.errors import ConfigError, one_line
from vocflow.grid import cell_settings

log = logging.getLogger(__name__)

STATES = ("done", "running", "resumed", "failed", "pending")
OUTPUTS = ("best.pt", "metrics.csv", "oof.npz")
QUIET_S = 900.0  # an attempt on another host whose log is this quiet is taken for dead
SLURM_TIMEOUT_S = 30.0
RUNNING_JOBS = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "RESIZING", "SIGNALING",
                          "STAGE_OUT"})
FAILED_JOBS = frozenset({"FAILED", "TIMEOUT", "OUT_OF_MEMORY", "CANCELLED", "NODE_FAIL",
                         "PREEMPTED", "BOOT_FAIL", "DEADLINE"})


# --------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class CellId:
    task: str
    model: str
    loss: str
    fold: int

    @property
    def path(self) -> str:
        return f"{self.task}/{self.model}/{self.loss}/fold{self.fold}"

    @property
    def wildcards(self) -> str:
        """The SLURM plugin's ``_``-joined wildcard values (its comment and log folder)."""
        return f"{self.model}_{self.loss}_{self.fold}"

    @property
    def comment(self) -> str:
        return f"rule_train_{self.task}_wildcards_{self.wildcards}"


@dataclass(frozen=True)
class GridCell:
    id: CellId
    epochs: int
    metric: str  # the task's selection_metric: metrics.csv column val_{metric}


def merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` over ``base`` as ``snakemake --configfile`` merges: mappings key by key,
    everything else (lists too) replaced."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def load_config(paths: Sequence[str | Path]) -> dict[str, Any]:
    """The config files merged in order (a study run with ``--configfile`` overlays)."""
    config: dict[str, Any] = {}
    for path in paths:
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {one_line(exc)}; pass the study's "
                              "config with --config FILE") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config {path} is not a YAML mapping; pass the study's config "
                              "with --config FILE")
        config = merge(config, data)
    return config


def cell_epochs(config: dict[str, Any], task: str, model: str, loss: str) -> int:
    """A cell's epoch count, as its training job resolves it (vocflow.grid, torch-free)."""
    return int(cell_settings(config, task, model, loss)["epochs"])


def grid_cells(config: Mapping[str, Any]) -> list[GridCell]:
    """Every trained cell: models × losses × folds per task, in workflow order."""
    if not isinstance(config.get("folds"), int):
        raise ConfigError("config key 'folds' is missing or not an integer; pass the study's "
                          "config with --config FILE")
    cells = []
    for task in TASKS:
        block = config.get(task)
        if not isinstance(block, Mapping) or not block.get("models") or not block.get("losses"):
            raise ConfigError(f"config key '{task}' needs 'models' and 'losses' lists; pass the "
                              "study's config with --config FILE")
        metric = str(block.get("selection_metric", ""))
        cells += [GridCell(CellId(task, m, loss, k), cell_epochs(config, task, m, loss), metric)
                  for m in block["models"] for loss in block["losses"]
                  for k in range(config["folds"])]
    return cells


# --------------------------------------------------------------------------- the cell's log

LINE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) (\w+) (\S+): (.*)")
STARTED = re.compile(r"---- job started \(pid (\d+)\) ----")
WHERE = re.compile(r"attempt on host (\S+) pid \d+(?: slurm job (\S+))?")
EPOCH = re.compile(r"epoch (\d+)/(\d+) train_loss \S+ train_\w+ \S+ val_loss \S+ val_\w+ (\S+) lr")
RESUMED = re.compile(r"resumed at epoch (\d+)")
STOPPED = re.compile(r"stop signal (\d+): state saved")
FINISHED = re.compile(r"best epoch \d+ \(")


@dataclass
class Attempt:
    """One start of a cell's job, as its log tells it."""

    start: float  # seconds since the epoch, of its "job started" line
    end: float  # of its last line
    pid: int
    host: str = ""
    job: str = ""  # SLURM job id
    resumed: int = 0  # the epoch it resumed at; 0 = a fresh start
    epoch: int = 0  # of its last epoch line
    epochs: int = 0
    scores: list[float] = field(default_factory=list)  # val_{metric} of its epoch lines
    error: str = ""  # its last ERROR/CRITICAL message (a traceback's last line)
    stopped: str = ""  # "stop signal N" when it saved its state and exited to be re-run
    finished: bool = False  # wrote its outputs

    @property
    def ended(self) -> bool:
        return self.finished or bool(self.error or self.stopped)


def stamp(date: str, millis: str) -> float:
    return time.mktime(time.strptime(date, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000


def parse_log(lines: Iterable[str]) -> list[Attempt]:
    """The attempts of a training log (vocflow.logs format; lines before the first attempt,
    written by no training job, are skipped)."""
    attempts: list[Attempt] = []
    in_traceback = False
    for line in lines:
        m = LINE.fullmatch(line.rstrip("\n"))
        if m is None:
            if attempts and in_traceback and line.strip():
                attempts[-1].error = one_line(line)  # a traceback ends with the exception
            continue
        when, level, message = stamp(m[1], m[2]), m[3], m[5]
        in_traceback = level == "CRITICAL"
        started = STARTED.fullmatch(message)
        if started:
            attempts.append(Attempt(when, when, int(started[1])))
            continue
        if not attempts:
            continue
        read_line(attempts[-1], when, level, message)
    return attempts


def read_line(a: Attempt, when: float, level: str, message: str) -> None:
    a.end = when
    if level in ("ERROR", "CRITICAL"):
        a.error = one_line(message)
    elif m := WHERE.match(message):
        a.host, a.job = m[1], m[2] or ""
    elif m := EPOCH.match(message):
        a.epoch, a.epochs = int(m[1]), int(m[2])
        with contextlib.suppress(ValueError):
            a.scores.append(float(m[3]))
    elif m := RESUMED.match(message):
        a.resumed = int(m[1])
    elif m := STOPPED.match(message):
        a.stopped = f"stop signal {m[1]}"
    elif FINISHED.match(message):
        a.finished = True


def read_log(path: Path) -> list[Attempt]:
    try:
        with open(path, errors="replace") as fh:
            return parse_log(fh)
    except OSError:  # none yet, or removed while we read
        return []


def current_run(attempts: Sequence[Attempt]) -> list[Attempt]:
    """The attempts of the run in progress: back to its fresh start (an attempt that trained
    without resuming), never into an earlier run that wrote its outputs."""
    run: list[Attempt] = []
    for a in reversed(attempts):
        if run and a.finished:
            break
        run.insert(0, a)
        if not a.resumed and a.epoch > 0:
            break
    return run


def process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch); None where /proc cannot say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        ticks = float(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def pid_alive(pid: int, since: float) -> bool:
    """Process ``pid`` exists and started by ``since`` (a later one reuses a dead job's pid)."""
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except PermissionError:
        pass  # another user's process
    except OSError:
        return False
    started = process_start(pid)
    return started is None or started <= since + 2.0  # /proc's boot time has 1 s steps


def attempt_alive(a: Attempt, log_mtime: float, now: float, host: str) -> bool:
    if a.ended:
        return False
    if not a.host or a.host == host:
        return pid_alive(a.pid, a.start)
    return now - log_mtime < QUIET_S  # progress lines come every minute


# --------------------------------------------------------------------------- metrics.csv


def read_rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))
    except (OSError, csv.Error):  # none yet, or removed while we read
        return []


def number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return None if math.isnan(value) else value


def rows_best(rows: Sequence[Mapping[str, str]], metric: str) -> float | None:
    """val_{metric} of the ``is_best`` row, else the highest one."""
    column = f"val_{metric}"
    marked = [number(r.get(column)) for r in rows if r.get("is_best") == "1"]
    if marked and marked[0] is not None:
        return marked[0]
    values = [v for v in (number(r.get(column)) for r in rows) if v is not None]
    return max(values, default=None)


# --------------------------------------------------------------------------- SLURM


@dataclass(frozen=True)
class Job:
    id: str
    state: str
    elapsed_s: float | None = None


def job_order(job_id: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", job_id))


def slurm_seconds(text: str) -> float | None:
    """squeue's TIME: [D-][HH:]MM:SS."""
    days, _, clock = text.strip().rpartition("-")
    try:
        parts = [int(p) for p in clock.split(":")]
        seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
        return seconds + int(days or 0) * 86400
    except ValueError:
        return None


def parse_squeue(text: str) -> dict[str, Job]:
    """Comment -> the newest job with that comment, from ``squeue --format=%i|%T|%M|%k``."""
    jobs: dict[str, Job] = {}
    for line in text.splitlines():
        parts = line.strip().split("|", 3)
        if len(parts) != 4:
            continue
        job = Job(parts[0], parts[1].upper(), slurm_seconds(parts[2]))
        old = jobs.get(parts[3])
        if old is None or job_order(job.id) > job_order(old.id):
            jobs[parts[3]] = job
    return jobs


def parse_sacct(text: str) -> dict[str, str]:
    """Job id -> state ("CANCELLED by 123" -> CANCELLED) from ``sacct --parsable2``."""
    states = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 2 and parts[0] and parts[1]:
            states[parts[0]] = parts[1].split()[0].upper()
    return states


def query(args: list[str]) -> str:
    """stdout of a SLURM query; "" (and a warning) when it fails: the table goes on without."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=SLURM_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s failed (%s): SLURM jobs are left out", Path(args[0]).name, one_line(exc))
        return ""
    if done.returncode != 0:
        log.warning("%s failed (%s): SLURM jobs are left out", Path(args[0]).name,
                    one_line(done.stderr) or f"exit status {done.returncode}")
        return ""
    return done.stdout


def slurm_queue() -> dict[str, Job]:
    """This user's queued and running jobs by comment; {} without SLURM."""
    exe = shutil.which("squeue")
    if exe is None:
        return {}
    # A uid, not a name: getpass fails where the uid has no passwd entry (containers).
    return parse_squeue(query([exe, "--noheader", f"--user={os.getuid()}",
                               "--format=%i|%T|%M|%k"]))


def slurm_ended(job_ids: Sequence[str]) -> dict[str, str]:
    """Job id -> the state sacct records; {} without sacct."""
    exe = shutil.which("sacct")
    if exe is None or not job_ids:
        return {}
    return parse_sacct(query([exe, "--noheader", "--parsable2", "--allocations",
                              f"--jobs={','.join(job_ids)}", "--format=JobIDRaw,State"]))


# --------------------------------------------------------------------------- one cell


@dataclass(frozen=True)
class CellStatus:
    """One row of the table."""

    task: str
    model: str
    loss: str
    fold: int
    state: str
    epoch: int  # epochs done
    epochs: int
    metric: str
    best: float | None  # best val_{metric} so far
    elapsed_s: float | None  # wall time of the cell's current run (all its attempts)
    job: str  # SLURM job id: the queued or running one, else the latest known
    logs: tuple[str, ...] = ()  # of a failed cell: its log, its SLURM job's log
    reason: str = ""  # of a failed cell


@dataclass
class Evidence:
    """What the disk says about one cell."""

    cell: GridCell
    done: bool
    rows: list[dict[str, str]]
    attempts: list[Attempt]
    log: Path
    log_mtime: float
    slurm_logs: dict[str, Path]  # job id -> the plugin's log of that job
    has_state: bool  # a resume state waits under results/state/

    @property
    def jobs(self) -> list[str]:
        """Every SLURM job id known for the cell, oldest first."""
        ids = {a.job for a in self.attempts if a.job} | set(self.slurm_logs)
        return sorted(ids, key=job_order)


def gather(cell: GridCell, results: Path) -> Evidence:
    c = cell.id
    folder = results / c.task / c.model / c.loss / f"fold{c.fold}"
    log_path = results / "logs" / "train" / c.task / c.model / c.loss / f"fold{c.fold}.log"
    try:
        mtime = log_path.stat().st_mtime
    except OSError:
        mtime = 0.0
    slurm_dir = results / "logs" / "slurm" / f"rule_train_{c.task}" / c.wildcards
    slurm_logs = {p.stem: p for p in sorted(slurm_dir.glob("*.log")) if job_order(p.stem)}
    return Evidence(cell, all((folder / name).is_file() for name in OUTPUTS),
                    read_rows(folder / "metrics.csv"), read_log(log_path), log_path, mtime,
                    slurm_logs, (results / "state" / c.path / "state.pt").is_file())


def decide(ev: Evidence, queued: Job | None, ended: str, now: float, host: str) -> CellStatus:
    """The cell's row from its evidence, its job in squeue (if any) and the state sacct gives
    its latest job ("" if unknown)."""
    run = current_run(ev.attempts)
    last = run[-1] if run else None
    live = False
    if ev.done:
        state = "done"
    elif queued is not None and queued.state in RUNNING_JOBS:
        logged = last is not None and last.job == queued.id and not last.ended
        live = logged
        resumed = last.resumed if logged and last is not None else ev.has_state
        state = "resumed" if resumed else "running"
    elif queued is not None:
        state = "pending"  # queued (or requeued) by SLURM
    elif last is not None and attempt_alive(last, ev.log_mtime, now, host):
        live, state = True, "resumed" if last.resumed else "running"
    elif (last is not None and not last.finished) or ended in FAILED_JOBS:
        state = "failed"
    else:
        state = "pending"
    elapsed = run_seconds(run, live, now)
    if run and run[0].resumed:  # Snakemake restarted the log: earlier epochs' time is in rows
        elapsed = (elapsed or 0.0) + sum(number(r.get("seconds")) or 0.0 for r in ev.rows
                                         if (number(r.get("epoch")) or 0) < run[0].resumed)
    if state in ("running", "resumed") and not live and queued is not None:
        elapsed = (elapsed or 0.0) + (queued.elapsed_s or 0.0)  # its attempt has not logged yet
    if elapsed is None and ev.rows:
        elapsed = sum(number(r.get("seconds")) or 0.0 for r in ev.rows)
    epoch, best = progress(ev, run)
    job = queued.id if queued is not None else (ev.jobs[-1] if ev.jobs else "")
    c = ev.cell.id
    failed = state == "failed"
    return CellStatus(c.task, c.model, c.loss, c.fold, state, epoch, ev.cell.epochs,
                      ev.cell.metric, best, elapsed, job,
                      failure_logs(ev, job) if failed else (),
                      failure_reason(last, ended) if failed else "")


def run_seconds(run: Sequence[Attempt], live: bool, now: float) -> float | None:
    if not run:
        return None
    ends = [a.end for a in run[:-1]] + [now if live else run[-1].end]
    return sum(end - a.start for a, end in zip(run, ends, strict=True))


def progress(ev: Evidence, run: Sequence[Attempt]) -> tuple[int, float | None]:
    """Epochs done and the best score: from metrics.csv, else (a failed job's outputs are
    deleted) from the run's epoch lines."""
    if ev.rows:
        epoch = number(ev.rows[-1].get("epoch"))
        return int(epoch or 0), rows_best(ev.rows, ev.cell.metric)
    scores = [s for a in run for s in a.scores if not math.isnan(s)]
    return max((a.epoch for a in run), default=0), max(scores, default=None)


def failure_logs(ev: Evidence, job: str) -> tuple[str, ...]:
    logs = [str(ev.log)] if ev.log_mtime else []
    if job in ev.slurm_logs:
        logs.append(str(ev.slurm_logs[job]))
    return tuple(logs)


def failure_reason(last: Attempt | None, ended: str) -> str:
    parts = [f"SLURM {ended}"] if ended in FAILED_JOBS else []
    if last is not None:
        parts.append(last.error or (f"{last.stopped}, state saved: resumes when re-run"
                                    if last.stopped else "ended without an error line "
                                    "(killed?)"))
    return "; ".join(parts)


# --------------------------------------------------------------------------- the grid's table


def collect(configs: Sequence[str | Path], results: str | Path = "results",
            now: float | None = None) -> list[CellStatus]:
    """Every grid cell's row (see the module docstring)."""
    cells = grid_cells(load_config(configs))
    evidence = [gather(cell, Path(results)) for cell in cells]
    queue = slurm_queue()
    unsettled = [ev.jobs[-1] for ev in evidence
                 if not ev.done and ev.cell.id.comment not in queue and ev.jobs]
    ended = slurm_ended(unsettled)
    when = time.time() if now is None else now
    host = socket.gethostname()
    return [decide(ev, queue.get(ev.cell.id.comment),
                   ended.get(ev.jobs[-1], "") if ev.jobs else "", when, host)
            for ev in evidence]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


COLUMNS = ("task", "model", "loss", "fold", "state", "epoch", "best", "elapsed", "job", "log")


def row_cells(r: CellStatus) -> list[str]:
    best = f"{r.metric} {r.best:.4f}" if r.best is not None else "-"
    return [r.task, r.model, r.loss, str(r.fold), r.state, f"{r.epoch}/{r.epochs}", best,
            duration(r.elapsed_s), r.job or "-", " ".join(r.logs) or "-"]


def table(rows: Sequence[CellStatus]) -> str:
    lines = [list(COLUMNS), *(row_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True))
                     .rstrip() for line in lines)


def summary(rows: Sequence[CellStatus]) -> str:
    cells = len({(r.task, r.model, r.loss) for r in rows})
    folds = len({r.fold for r in rows})
    counts = ", ".join(f"{sum(r.state == s for r in rows)} {s}" for s in STATES)
    return f"{cells} cells × {folds} folds: {counts}"


def report(configs: Sequence[str | Path], results: str | Path = "results",
           now: float | None = None) -> str:
    """The table, why each failed cell failed, and the summary line."""
    rows = collect(configs, results, now)
    failures = [f"failed {r.task}/{r.model}/{r.loss}/fold{r.fold}: {r.reason}"
                for r in rows if r.state == "failed" and r.reason]
    return "\n".join([table(rows), *(["", *failures] if failures else []), "",
                      summary(rows)]) + "\n"
