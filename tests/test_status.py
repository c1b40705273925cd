"""Progress you can watch: metrics.csv after every epoch, and `vocflow status` on hand-made
results trees (with and without SLURM), on a real local run, and leaving results/ untouched."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from helpers import TINY_MODELS, copy_workflow, train_tiny

import vocflow.train as train
from vocflow import cli
from vocflow.grid import TrainSettings
from vocflow.status import (
    CellStatus,
    collect,
    current_run,
    parse_log,
    report,
    slurm_seconds,
)

HOST = socket.gethostname()
CLEAR = "\x1b[H\x1b[2J"  # ANSI: cursor home, clear screen
CONFIG = {
    "folds": 2,
    "train": {"epochs": 3},
    "classification": {"models": ["cnn"], "losses": ["bce", "focal"], "selection_metric": "map",
                       "train": {"epochs": 4}},
    "segmentation": {"models": ["unet"], "losses": ["ce"], "selection_metric": "kaggle"},
}


# ----------------------------------------------------------------------------- metrics.csv


def epochs_in(path: Path) -> list[int]:
    return pd.read_csv(path)["epoch"].tolist()


def test_metrics_csv_grows_every_epoch_and_ends_as_before(tiny_data: dict,
                                                          tmp_path: Path) -> None:
    seen: list[tuple[list[int], bytes]] = []
    out = tmp_path / "cell"

    def after_epoch(event: str, epoch: int, batch: int, model: Any) -> None:
        if event == "epoch_end":
            rows = pd.read_csv(out / "metrics.csv")
            assert rows["is_best"].sum() == 1  # the best epoch so far is marked
            seen.append((rows["epoch"].tolist(), (out / "metrics.csv").read_bytes()))

    paths = train_tiny(tiny_data, "classification", out, epochs=3, run={"callback": after_epoch})
    assert [epochs for epochs, _ in seen] == [[1], [1, 2], [1, 2, 3]]
    assert paths["metrics"].read_bytes() == seen[-1][1]  # the final write changes nothing
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_a_resumed_run_writes_the_earlier_epochs_again_at_once(tiny_data: dict,
                                                               tmp_path: Path) -> None:
    out, state = tmp_path / "cell", tmp_path / "state"

    def crash(event: str, epoch: int, batch: int, model: Any) -> None:
        if (event, epoch) == ("epoch_end", 2):
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        train_tiny(tiny_data, "classification", out, epochs=3,
                   run={"state_dir": state, "callback": crash})
    assert epochs_in(out / "metrics.csv") == [1, 2]
    (out / "metrics.csv").unlink()  # Snakemake deletes a failed job's outputs
    during: list[list[int]] = []

    def first_batch(event: str, epoch: int, batch: int, model: Any) -> None:
        if event == "batch_end" and not during:
            during.append(epochs_in(out / "metrics.csv"))

    paths = train_tiny(tiny_data, "classification", out, epochs=3,
                       run={"state_dir": state, "callback": first_batch})
    assert during == [[1, 2]]  # before epoch 3 trains
    assert pd.read_csv(paths["metrics"])["resumed_from"].tolist() == [0, 0, 2]


def test_a_refit_writes_its_metrics_every_epoch(tiny_data: dict, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    folds = [train_tiny(tiny_data, "classification", tmp_path / f"fold{k}", k, epochs=2)
             for k in (0, 1)]
    epochs = round(sum(pd.read_csv(f["metrics"]).query("is_best == 1")["epoch"].iloc[0]
                       for f in folds) / 2)
    written: list[int] = []
    write = train.write_metrics
    monkeypatch.setattr(train, "write_metrics",
                        lambda path, rows, *a: (written.append(len(rows)), write(path, rows, *a)))
    spec = {**TINY_MODELS["classification"], "epochs": 2, "batch_size": 8}
    s = TrainSettings(task="classification", model="cnn", **spec).to_dict()
    train.refit_cell(tiny_data["train"], [f["metrics"] for f in folds], s, 0,
                     tmp_path / "refit" / "best.pt", tmp_path / "refit" / "metrics.csv")
    assert written == [*range(1, epochs + 1), epochs]  # every epoch, then the final write
    assert epochs_in(tmp_path / "refit" / "metrics.csv") == list(range(1, epochs + 1))


# ----------------------------------------------------------------------------- hand-made trees


def stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f",{int(t * 1000) % 1000:03d}"


def log_line(t: float, message: str, level: str = "INFO", name: str = "vocflow.train") -> str:
    return f"{stamp(t)} {level} {name}: {message}\n"


def started(t: float, pid: int, host: str = HOST, job: str = "") -> str:
    where = f"attempt on host {host} pid {pid}" + (f" slurm job {job}" if job else "")
    return (log_line(t, f"---- job started (pid {pid}) ----", name="vocflow.logs")
            + log_line(t, where))


def epoch_line(t: float, k: int, epochs: int, value: float, metric: str = "map") -> str:
    return log_line(t, f"epoch {k}/{epochs} train_loss 0.5000 train_{metric} 0.4000 val_loss "
                       f"0.6000 val_{metric} {value:.4f} lr 0.001 *")


def write_cell(results: Path, cell: str, rows: list[dict] | None = None, log: str = "",
               outputs: bool = False, state: bool = False) -> None:
    task, model, loss, fold = cell.split("/")
    folder = results / cell
    folder.mkdir(parents=True)
    if rows is not None:
        frame = pd.DataFrame(rows)
        for i, (key, value) in enumerate((("task", task), ("model", model), ("loss", loss),
                                          ("fold", int(fold[4:])))):
            frame.insert(i, key, value)
        frame.to_csv(folder / "metrics.csv", index=False)
    if outputs:
        (folder / "best.pt").write_bytes(b"checkpoint")
        (folder / "oof.npz").write_bytes(b"oof")
    if log:
        path = results / "logs" / "train" / f"{cell}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(log)
    if state:
        (results / "state" / cell).mkdir(parents=True)
        (results / "state" / cell / "state.pt").write_bytes(b"state")


def metric_rows(values: list[float], best: int, metric: str = "map") -> list[dict]:
    return [{"epoch": k + 1, "train_loss": 0.5, f"val_{metric}": v, "resumed_from": 0,
             "seconds": 10.0, "is_best": int(k + 1 == best)} for k, v in enumerate(values)]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


@pytest.fixture
def no_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH without squeue and sacct, also on a cluster machine."""
    (tmp_path / "empty_bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty_bin"))


@pytest.fixture
def study(tmp_path: Path) -> tuple[Path, Path, float]:
    """A config and a results tree with one cell in each state; the time "now" to judge at."""
    config, results = tmp_path / "config.yaml", tmp_path / "results"
    config.write_text(yaml.safe_dump(CONFIG))
    t = float(int(time.time()))  # live attempts start after this test process did
    write_cell(results, "classification/cnn/bce/fold0", metric_rows([0.2, 0.5, 0.4, 0.45], 2),
               started(t - 3600, 11) + epoch_line(t - 3560, 1, 4, 0.2)
               + log_line(t - 3500, "best epoch 2 (val_map 0.5000); 0 epochs came from a "
                                    "resumed state"), outputs=True)
    write_cell(results, "classification/cnn/bce/fold1", metric_rows([0.3, 0.35], 2),
               started(t, os.getpid()) + epoch_line(t + 20, 1, 4, 0.3)
               + epoch_line(t + 40, 2, 4, 0.35), state=True)
    write_cell(results, "classification/cnn/focal/fold0", None,
               started(t - 600, 21, host="node9") + epoch_line(t - 590, 1, 4, 0.1)
               + epoch_line(t - 580, 2, 4, 0.3)
               + log_line(t - 575, "DataError: cannot read results/data/train/images.npy: "
                                   "the file is empty (0 bytes)", level="ERROR",
                          name="vocflow.logs"))
    # Snakemake restarted the log: the attempt before (2 epochs of 10 s) is in metrics.csv only.
    write_cell(results, "classification/cnn/focal/fold1", metric_rows([0.25, 0.2], 1),
               started(t, os.getpid())
               + log_line(t + 1, "resumed at epoch 3 (batch 1) from results/state/x: 2 epochs "
                                 "were already done"), state=True)
    write_cell(results, "segmentation/unet/ce/fold1", None,
               started(t - 50, dead_pid()) + epoch_line(t - 30, 1, 3, 0.6, "kaggle"))
    return config, results, t + 65


EXPECTED = [
    CellStatus("classification", "cnn", "bce", 0, "done", 4, 4, "map", 0.5, 100.0, ""),
    CellStatus("classification", "cnn", "bce", 1, "running", 2, 4, "map", 0.35, 65.0, ""),
    CellStatus("classification", "cnn", "focal", 0, "failed", 2, 4, "map", 0.3, 25.0, "",
               ("{r}/logs/train/classification/cnn/focal/fold0.log",),
               "DataError: cannot read results/data/train/images.npy: the file is empty "
               "(0 bytes)"),
    CellStatus("classification", "cnn", "focal", 1, "resumed", 2, 4, "map", 0.25, 20.0 + 65.0,
               ""),
    CellStatus("segmentation", "unet", "ce", 0, "pending", 0, 3, "kaggle", None, None, ""),
    CellStatus("segmentation", "unet", "ce", 1, "failed", 1, 3, "kaggle", 0.6, 20.0, "",
               ("{r}/logs/train/segmentation/unet/ce/fold1.log",),
               "ended without an error line (killed?)"),
]


def expected(results: Path) -> list[CellStatus]:
    return [CellStatus(**{**row.__dict__, "logs": tuple(p.format(r=results) for p in row.logs)})
            for row in EXPECTED]


@pytest.mark.usefixtures("no_slurm")
def test_each_state_from_a_hand_made_tree(study: tuple[Path, Path, float]) -> None:
    config, results, now = study
    assert collect([config], results, now=now) == expected(results)


@pytest.mark.usefixtures("no_slurm")
def test_the_report_is_a_table_with_reasons_and_a_summary(
        study: tuple[Path, Path, float]) -> None:
    config, results, now = study
    r = str(results)
    focal_log = f"{r}/logs/train/classification/cnn/focal/fold0.log"
    unet_log = f"{r}/logs/train/segmentation/unet/ce/fold1.log"
    w = len(focal_log)
    assert report([config], results, now=now) == "\n".join([
        "task            model  loss   fold  state    epoch  best           elapsed  job  log",
        "classification  cnn    bce    0     done     4/4    map 0.5000     1m40s    -    -",
        "classification  cnn    bce    1     running  2/4    map 0.3500     1m05s    -    -",
        f"classification  cnn    focal  0     failed   2/4    map 0.3000     25s      -    "
        f"{focal_log}",
        "classification  cnn    focal  1     resumed  2/4    map 0.2500     1m25s    -    -",
        "segmentation    unet   ce     0     pending  0/3    -              -        -    -",
        f"segmentation    unet   ce     1     failed   1/3    kaggle 0.6000  20s      -    "
        f"{unet_log:<{w}}".rstrip(),
        "",
        "failed classification/cnn/focal/fold0: DataError: cannot read "
        "results/data/train/images.npy: the file is empty (0 bytes)",
        "failed segmentation/unet/ce/fold1: ended without an error line (killed?)",
        "",
        "3 cells × 2 folds: 1 done, 1 running, 1 resumed, 2 failed, 1 pending",
    ]) + "\n"


def fake_slurm(bin_dir: Path, calls: Path, squeue: str, sacct: str) -> None:
    """squeue and sacct that record their arguments and print canned lines."""
    bin_dir.mkdir()
    for name, text in (("squeue", squeue), ("sacct", sacct)):
        exe = bin_dir / name
        exe.write_text(f"#!/bin/sh\necho {name} \"$@\" >> '{calls}'\ncat <<'EOF'\n{text}EOF\n")
        exe.chmod(0o755)


def test_slurm_jobs_map_to_cells_by_their_comment(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    config, results = tmp_path / "config.yaml", tmp_path / "results"
    config.write_text(yaml.safe_dump(CONFIG))
    t = float(int(time.time()))
    # bce/fold0: preempted on node3 after 2 epochs, its state saved; the requeued job runs on
    # node4 but has not logged yet. bce/fold1: queued. focal/fold0: killed at its time limit.
    write_cell(results, "classification/cnn/bce/fold0", metric_rows([0.3, 0.4], 2),
               started(t - 500, 41, "node3", "1001") + epoch_line(t - 480, 1, 4, 0.3)
               + epoch_line(t - 460, 2, 4, 0.4)
               + log_line(t - 400, "stop signal 15: state saved at epoch 3 batch 0; exiting to "
                                   "be re-run", level="WARNING"), state=True)
    write_cell(results, "classification/cnn/focal/fold0", None,
               started(t - 3000, 51, "node5", "1003") + epoch_line(t - 2000, 1, 4, 0.2))
    os.utime(results / "logs/train/classification/cnn/focal/fold0.log", (t - 2000, t - 2000))
    slurm_log = results / "logs/slurm/rule_train_classification/cnn_focal_0/1003.log"
    slurm_log.parent.mkdir(parents=True)
    slurm_log.write_text("slurmstepd: error: *** JOB 1003 CANCELLED DUE TO TIME LIMIT ***\n")
    calls = tmp_path / "calls.txt"
    fake_slurm(tmp_path / "bin", calls,
               "1000|COMPLETED|5:00|rule_train_classification_wildcards_cnn_bce_0\n"
               "1002|RUNNING|1:05|rule_train_classification_wildcards_cnn_bce_0\n"
               "1004|PENDING|0:00|rule_train_classification_wildcards_cnn_bce_1\n"
               "999|RUNNING|3:00|rule_select_wildcards_classification\n",
               "1003|TIMEOUT\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")  # sh and cat
    rows = {(r.model, r.loss, r.fold): r for r in collect([config], results, now=t)}
    assert rows["cnn", "bce", 0] == CellStatus(
        "classification", "cnn", "bce", 0, "resumed", 2, 4, "map", 0.4, 100.0 + 65.0, "1002")
    assert rows["cnn", "bce", 1] == CellStatus(
        "classification", "cnn", "bce", 1, "pending", 0, 4, "map", None, None, "1004")
    assert rows["cnn", "focal", 0] == CellStatus(
        "classification", "cnn", "focal", 0, "failed", 1, 4, "map", 0.2, 1000.0, "1003",
        (str(results / "logs/train/classification/cnn/focal/fold0.log"), str(slurm_log)),
        "SLURM TIMEOUT; ended without an error line (killed?)")
    assert rows["cnn", "focal", 1].state == "pending"
    assert calls.read_text().splitlines() == [
        f"squeue --noheader --user={os.getuid()} --format=%i|%T|%M|%k",
        "sacct --noheader --parsable2 --allocations --jobs=1003 --format=JobIDRaw,State"]


# ----------------------------------------------------------------------------- pieces


def test_a_run_goes_back_to_its_fresh_start_but_not_into_an_earlier_run() -> None:
    t = 1_000_000.0
    text = (started(t, 1) + epoch_line(t + 1, 1, 2, 0.1) + log_line(t + 2, "best epoch 1 (x")
            + started(t + 10, 2) + epoch_line(t + 11, 1, 2, 0.2)  # a new run; killed
            + started(t + 20, 3)  # crashed while setting up
            + started(t + 30, 4) + log_line(t + 31, "resumed at epoch 2 (batch 0) from s"))
    attempts = parse_log(text.splitlines(keepends=True))
    assert [a.pid for a in current_run(attempts)] == [2, 3, 4]
    assert attempts[0].finished and attempts[3].resumed == 2 and attempts[1].scores == [0.2]


def test_a_traceback_gives_its_last_line_as_the_error() -> None:
    text = (started(0.0, 1) + log_line(1.0, "unexpected error, the traceback follows",
                                       level="CRITICAL")
            + "Traceback (most recent call last):\n  File \"x.py\", line 1\n"
              "RuntimeError: CUDA out of memory\n")
    assert parse_log(text.splitlines(keepends=True))[0].error == "RuntimeError: CUDA out of memory"


@pytest.mark.parametrize(("text", "seconds"), [("0:07", 7), ("05:07", 307), ("1:02:03", 3723),
                                               ("2-01:00:00", 176400), ("INVALID", None)])
def test_slurm_times(text: str, seconds: float | None) -> None:
    assert slurm_seconds(text) == seconds


def test_a_bad_config_is_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"folds": 2, "classification": {}}))
    assert cli.main(["status", "--config", str(tmp_path / "missing.yaml")]) == 1
    assert f"cannot read config {tmp_path / 'missing.yaml'}: " in caplog.text
    assert cli.main(["status", "--config", str(tmp_path / "config.yaml")]) == 1
    assert "config key 'classification' needs 'models' and 'losses' lists" in caplog.text


# ----------------------------------------------------------------------------- read only


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under ``root``: kind, size, mtime (ns) and content hash."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            found[str(path.relative_to(root))] = (path.is_dir(), st.st_size, st.st_mtime_ns,
                                                  digest)
    found["."] = (True, 0, root.stat().st_mtime_ns, "")
    return found


def status_cli(workdir: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vocflow.cli", "status", *args], cwd=workdir,
                          capture_output=True, text=True, timeout=120, **kw)


def watch_then_interrupt(workdir: Path, *args: str) -> tuple[int, str, str]:
    """`vocflow status --watch 0.2`, stopped with SIGINT (Ctrl-C) after three refreshes."""
    out_file = workdir / ".watch.out"  # beside results/, never in it
    with open(out_file, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "vocflow.cli", "status", "--watch", "0.2",
                                 *args], cwd=workdir, stdout=out, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 60
        while out_file.read_text().count(CLEAR) < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    return proc.returncode, out_file.read_text(), err


@pytest.mark.usefixtures("no_slurm")
def test_status_and_watch_leave_the_tree_untouched(study: tuple[Path, Path, float]) -> None:
    config, results, _ = study
    before = snapshot(results)
    result = status_cli(results.parent, "--config", str(config), "--results", str(results))
    assert result.returncode == 0, result.stderr
    assert "1 done, 1 running, 1 resumed, 2 failed, 1 pending" in result.stdout
    code, out, err = watch_then_interrupt(results.parent, "--config", str(config),
                                          "--results", str(results))
    assert code == 0 and "Traceback" not in err, err
    assert out.count(CLEAR) >= 3 and out.count("3 cells × 2 folds") >= 3
    assert snapshot(results) == before


# ----------------------------------------------------------------------------- a real run

CELL = re.compile(r"^classification\s+cnn_watch\s+bce\s+0\s+(\w+)\s+(\d+)/(\d+)\s+"
                  r"(map \d\.\d{4}|-)", re.MULTILINE)


def poll_status(workdir: Path, proc: subprocess.Popen, wanted: str,
                timeout: float = 300) -> tuple[int, int, str]:
    """Run `vocflow status` until fold 0 of cnn_watch shows ``wanted`` mid-way (0 < k < E)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = status_cli(workdir).stdout
        m = CELL.search(out)
        if m and m[1] == wanted and 0 < int(m[2]) < int(m[3]):
            return int(m[2]), int(m[3]), out
        assert proc.poll() is None, f"snakemake ended first:\n{out}"
        time.sleep(0.2)
    raise AssertionError(f"no {wanted} cell mid-way within {timeout} s")


def start_snakemake(workdir: Path, log: Path) -> subprocess.Popen:
    with open(log, "w") as fh:
        return subprocess.Popen([sys.executable, "-m", "snakemake", "--profile", "profiles/local",
                                 "results/classification/cnn_watch/bce/fold0/metrics.csv"],
                                cwd=workdir, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def interrupt(proc: subprocess.Popen) -> None:
    """Ctrl-C: SIGINT to Snakemake's process group (its jobs too); SIGKILL if it hangs."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.workflow
def test_a_real_run_is_watched_interrupted_resumed_and_left_untouched(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")
    workdir = copy_workflow(tmp_path, "config", "status_watch")
    cell = workdir / "results/classification/cnn_watch/bce/fold0"
    proc = start_snakemake(workdir, tmp_path / "first.log")
    try:
        k, epochs, table = poll_status(workdir, proc, "running")
    finally:
        interrupt(proc)
    print(table)
    assert epochs == 8 and 0 < k < 8
    assert " 3 pending" in table and "0 done, 1 running" in table

    after = status_cli(workdir).stdout
    print(after)
    m = CELL.search(after)
    assert m and m[1] == "failed" and int(m[2]) >= k, after
    assert "results/logs/train/classification/cnn_watch/bce/fold0.log" in after

    proc = start_snakemake(workdir, tmp_path / "second.log")
    try:
        k2, _, table = poll_status(workdir, proc, "resumed")
        assert proc.wait(timeout=300) == 0, (tmp_path / "second.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            interrupt(proc)
    print(table)
    rows = pd.read_csv(cell / "metrics.csv")
    assert rows["epoch"].tolist() == list(range(1, 9)) and rows["resumed_from"].max() > 0

    before = snapshot(workdir / "results")
    done = status_cli(workdir)
    print(done.stdout)
    m = CELL.search(done.stdout)
    assert m and m.group(1, 2, 3) == ("done", "8", "8"), done.stdout
    best = rows.loc[rows["is_best"] == 1, "val_map"].iloc[0]
    assert m[4] == f"map {best:.4f}"
    code, _, err = watch_then_interrupt(workdir)
    assert code == 0, err
    assert snapshot(workdir / "results") == before
