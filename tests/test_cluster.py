"""The grid on a real SLURM scheduler: profiles/slurm against a single-node cluster with two fake
GPUs that this module starts (tests/cluster/start.sh) and stops again, by PID.

Without root or apt-get the cluster tests skip with the reason; under CI (CI=true) they fail
instead. The cluster starts at the first cluster test and stays up until the session ends: while
slurm-client is installed, every snakemake start waits ~10 s for a controller that does not
answer (NOTES gotcha 10), so later test files are fast only with the controller up.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import REPO, copy_workflow, job_counts, merge_config, run_snakemake

from vocflow.cluster import driver_command, profile_settings
from vocflow.errors import ConfigError

CLUSTER = REPO / "tests" / "cluster"
PROFILE = ("--profile", "profiles/slurm")
# Tests poll sooner than the profile's 20 s (which spares a real scheduler); nothing else changes.
FAST = ("--slurm-init-seconds-before-status-checks", "2")
SLURM_COMMANDS = {"sacct", "sacctmgr", "salloc", "sattach", "sbatch", "sbcast", "scancel",
                  "scontrol", "scrontab", "sdiag", "sinfo", "sprio", "squeue", "sreport", "srun",
                  "sshare", "sstat", "strigger", "sview", "slurmctld", "slurmd", "slurmdbd",
                  "slurmstepd", "seff", "sjstat", "smail", "sh5util"}
TASK_GRID = {"classification": (["cnn", "cnn_small"], ["bce", "focal"]),
             "segmentation": (["unet", "unet_small"], ["ce", "ce_dice"])}
TARGETS = ("results/leaderboard.csv",)
PARTIAL = ("--config", "partial=true")
# A job's rule and resources in a dry run's output (jobs of a group are indented under it).
RESOURCES = re.compile(r"\n *rule (\w+):\n(?: +.*\n)*? +resources: (.*)\n")
BROKEN_MODEL = "cnn_broken"  # .test/config/cluster_partial.yaml: fails for good
# What the plugin's --comment names: rules, and groups for grouped jobs (rule_GROUP).
RULES = ["train_classification", "train_segmentation", "data", "infer", "post", "attack"]
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)")
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY")
# Cells added to the grid by single runs (.test/config/cluster_*.yaml).
REQUEUED = "classification/cnn_long/bce/fold0"  # `scontrol requeue` after its first epoch
WARNED = "classification/cnn_warned/bce/fold0"  # the time-limit warning signal instead
LONG_EPOCHS = 30  # of cnn_long and cnn_warned (.test/config/cluster_long.yaml)
SLOW = "classification/cnn_slow/bce/fold0"  # trains for minutes; its driver gets cancelled
BROKEN_CELLS = tuple(f"results/classification/{m}/bce/fold0/metrics.csv"
                     for m in ("cnn_broken", "cnn_ok"))
SUBMIT_TARGET = "results/data/test/index.csv"  # one light job that no other run needs


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def unavailable(reason: str) -> None:
    """Skip (a user machine) or fail (CI, where the cluster tests must run)."""
    if in_ci():
        pytest.fail(f"CI=true but the SLURM test cluster is unavailable: {reason}")
    pytest.skip(f"no local SLURM test cluster: {reason}")


# ---------------------------------------------------------------- without SLURM at all


def path_without_slurm(bin_dir: Path) -> str:
    """A PATH of symlinks to every program of the usual PATH except SLURM's."""
    bin_dir.mkdir()
    for folder in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep):
        for exe in Path(folder).glob("*") if Path(folder).is_dir() else []:
            target = bin_dir / exe.name
            if exe.name not in SLURM_COMMANDS and not target.exists() and os.access(exe, os.X_OK):
                target.symlink_to(exe)
    return str(bin_dir)


def test_dry_run_and_dag_need_no_slurm(tmp_path: Path) -> None:
    (tmp_path / "wf").mkdir()
    workdir = copy_workflow(tmp_path / "wf", "cluster")
    env = {**os.environ, "PATH": path_without_slurm(tmp_path / "bin")}
    env.pop("SLURM_CONF", None)
    assert shutil.which("sbatch", path=env["PATH"]) is None
    dry = run_snakemake(workdir, *PROFILE, "-n", *TARGETS, timeout=300, env=env)
    assert dry.returncode == 0, dry.stderr[-3000:]
    text = dry.stdout + dry.stderr
    counts = job_counts(text)
    assert counts["train_classification"] == 8 and counts["train_segmentation"] == 8
    resources = dict(re.findall(RESOURCES, text))
    for rule in ("train_classification", "train_segmentation"):
        assert {"gpu=1", "cpus_per_gpu=1", "runtime=120", "slurm_partition=gpu",
                "slurm_extra=--signal=TERM@120"} <= set(resources[rule].split(", "))
    assert "slurm_partition=cpu" in resources["baseline"] and "gpu" not in resources["baseline"]
    # seconds of work: run by the driver on the login node, no SLURM job
    select_rules = (REPO / "workflow/rules/select.smk").read_text()
    assert re.search(r"\nrule leaderboard:\n(?:    .*\n|\n)*?    localrule: True\n", select_rules)
    dag = run_snakemake(workdir, *PROFILE, *TARGETS, "--dag", timeout=300, env=env)
    assert dag.returncode == 0, dag.stderr[-3000:]
    assert dag.stdout.lstrip().startswith("digraph")
    assert "train_segmentation" in dag.stdout and "leaderboard" in dag.stdout


def test_gpus_where_the_work_is_and_site_names_only_in_the_profile(tmp_path: Path) -> None:
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    partitions = {profile["default-resources"]["slurm_partition"]} | {
        r["slurm_partition"] for r in profile["set-resources"].values()}
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        text = smk.read_text()
        assert not re.search(r"slurm_(partition|account)|gpu_model", text), smk
        for name in partitions:
            # as a value (the test cluster's partition "gpu" is also the resource key gpu:)
            assert not re.search(rf"[\"']{name}[\"'](?!\s*:)", text), (smk, name)
    (tmp_path / "wf").mkdir()
    dry = run_snakemake(copy_workflow(tmp_path / "wf", "cluster"), *PROFILE, "-n", timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    text = dry.stdout + dry.stderr
    resources = dict(re.findall(RESOURCES, text))
    gpu = {rule for rule, res in resources.items() if "gpu=1" in res.split(", ")}
    assert gpu == {"train_classification", "train_segmentation", "predict", "oof_tta", "attack"}
    for rule, res in resources.items():
        part = "slurm_partition=gpu" if rule in gpu else "slurm_partition=cpu"
        assert part in res.split(", "), (rule, res)
        if rule in gpu - {"train_classification", "train_segmentation"}:  # grows on retries
            assert "runtime=60" in res and "mem_mb=1500" in res, (rule, res)


def test_profile_keeps_one_job_per_cell() -> None:
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["retries"] >= 1
    assert profile["slurm-logdir"] == "results/logs/slurm"
    # job arrays lose outputs with plugin 2.8.0 / jobstep 0.6.1 (README): re-check on upgrade
    assert "slurm-array-jobs" not in profile


# ---------------------------------------------------------------- vocflow submit, offline


def test_driver_settings_come_from_the_profile(tmp_path: Path) -> None:
    settings = profile_settings(REPO / "profiles/slurm")
    assert (settings.partition, settings.account, settings.qos) == ("cpu", None, None)
    assert profile_settings(REPO / "profiles/slurm", qos="long", time_min=60).qos == "long"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(
        {"default-resources": {"slurm_partition": "cpu; rm -rf ~"}}))
    with pytest.raises(ConfigError, match="slurm_partition|partition"):
        profile_settings(tmp_path)
    with pytest.raises(ConfigError, match="no config.yaml"):
        profile_settings(tmp_path / "missing")


def test_driver_command_is_an_argument_list() -> None:
    cmd = driver_command("profiles/slurm", ["-n", "results/a b.csv"], python="py")
    assert cmd == ["py", "-m", "snakemake", "--profile", "profiles/slurm", "-n",
                   "results/a b.csv"]
    with pytest.raises(ConfigError, match="NUL"):
        driver_command("profiles/slurm", ["a\0b"])


# ---------------------------------------------------------------- the cluster


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Path]:
    """A running single-node SLURM (this machine's cores, 2 fake GPUs, slurmdbd, MariaDB)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        unavailable("needs Linux and root (installs Debian packages, writes /etc/slurm)")
    state = Path(tempfile.mkdtemp(prefix="vocflow-slurm-", dir="/tmp"))
    started = time.perf_counter()
    try:
        result = subprocess.run(["bash", str(CLUSTER / "start.sh"), str(state)],
                                capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        subprocess.run(["bash", str(CLUSTER / "stop.sh"), str(state)], timeout=120)
        unavailable("tests/cluster/start.sh took more than 15 min")
    if result.returncode != 0:
        subprocess.run(["bash", str(CLUSTER / "stop.sh"), str(state)], timeout=120)
        unavailable(f"tests/cluster/start.sh exited {result.returncode}: "
                    f"{(result.stderr or result.stdout)[-1500:]}")
    print(f"SLURM test cluster up in {time.perf_counter() - started:.0f} s ({state})")
    yield state
    stopped = subprocess.run(["bash", str(CLUSTER / "stop.sh"), str(state)],
                             capture_output=True, text=True, timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    if "still alive" in stopped.stderr:  # processes that escaped SLURM's tracking
        warnings.warn(stopped.stderr.strip(), stacklevel=1)
    shutil.rmtree(state, ignore_errors=True)


def sacct(*args: str) -> list[dict[str, str]]:
    fields = ("JobID,JobName,Comment,State,ReqTRES,AllocTRES,Timelimit,ReqMem,Partition,Start,"
              "End")
    out = subprocess.run(["sacct", "-X", "-P", "-n", "-S", "now-1days", "-o", fields, *args],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [dict(zip(fields.split(","), line.split("|"), strict=True))
            for line in out.splitlines() if line]


def run_id(output: str) -> str:
    match = re.search(r"SLURM run ID: (\S+)", output)
    assert match, output[-3000:]
    return match.group(1)


def rule_of(comment: str, rules: list[str]) -> str:
    """The plugin's --comment is rule_RULE or rule_RULE_wildcards_W1_W2..., and for a group
    job rule_GROUP_RULE1_RULE2..."""
    for rule in sorted(rules, key=len, reverse=True):
        if comment == f"rule_{rule}" or comment.startswith(f"rule_{rule}_"):
            return rule
    raise AssertionError(f"no rule for comment {comment!r}")


def expected_cells(*extra_models: str) -> set[str]:
    """The plugin's comments of the grid's training jobs (with ``extra_models`` in
    classification)."""
    return {f"rule_train_{task}_wildcards_{m}_{loss}_{k}"
            for task, (models, losses) in TASK_GRID.items()
            for m in models + (list(extra_models) if task == "classification" else [])
            for loss in losses for k in (0, 1)}


def wait_for(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


def clone(source: Path, dest: Path, *overlays: str) -> Path:
    """A copy of a workdir (outputs and Snakemake metadata) with .test/config overlays merged
    into its config."""
    shutil.copytree(source, dest, symlinks=True)
    return merge_config(dest, *overlays)


def start_driver(workdir: Path, *args: str) -> subprocess.Popen:
    """snakemake --profile profiles/slurm ARGS in the background; output to workdir/driver.out
    (a file, not a pipe: a full pipe would block Snakemake)."""
    cmd = ["timeout", "-s", "INT", "-k", "30", "1500", sys.executable, "-m", "snakemake",
           *PROFILE, *FAST, *args]
    with open(workdir / "driver.out", "w") as out:
        return subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)


def ended(job_id: str) -> dict[str, str]:
    """sacct's record of ``job_id`` once it ended (within 10 min)."""
    return wait_for(lambda: [j for j in sacct("-j", job_id) if j["State"].split()[0] in ENDED],
                    600, f"SLURM job {job_id} to end")[0]


def vocflow_submit(workdir: Path, target: str) -> tuple[str, str]:
    """`vocflow submit` a driver for ``target``; its stdout and SLURM job id."""
    result = subprocess.run(
        [sys.executable, "-m", "vocflow.cli", "submit", "--workdir", str(workdir), "--time",
         "30", "--", *FAST, target], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout, re.search(r"SLURM job (\d+)", result.stdout).group(1)


def submit_driver_job(workdir: Path) -> dict:
    """A submitted driver runs to the end; a second one is cancelled (`scancel`) while its cell
    trains."""
    stdout, job_id = vocflow_submit(workdir, SUBMIT_TARGET)
    finished = {"stdout": stdout, "job": ended(job_id), "workdir": workdir}
    slow = clone(workdir, workdir.parent / "cancel", "cluster_slow")
    stdout, job_id = vocflow_submit(slow, f"results/{SLOW}/metrics.csv")
    cell_job = wait_for(lambda: (slow / "results/state" / SLOW / "state.pt").is_file()
                        and running_job(SLOW), 300, f"{SLOW} to train")
    subprocess.run(["scancel", job_id], check=True, timeout=60)
    log = Path(re.search(r"driver log: (\S+)", stdout).group(1))
    cancelled = {"driver": ended(job_id), "cell": ended(cell_job), "log": log}
    return {**finished, "cancelled": cancelled}


def running_job(cell: str) -> str | None:
    comment = "_".join(cell.split("/")[1:]).replace("fold", "")  # cnn_long_bce_0
    lines = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"], capture_output=True,
                           text=True, timeout=60).stdout.splitlines()
    return next((line.split()[0] for line in lines if line.endswith(f"_{comment}")), None)


def requeue(job_id: str) -> None:
    subprocess.run(["scontrol", "requeue", job_id], check=True, timeout=60)
    # a requeued job may start again only ~2 min later (BeginTime); release it at once
    wait_for(lambda: "BeginTime" in subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", "%r"], capture_output=True, text=True
    ).stdout, 120, "the requeued job to be pending")
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True,
                   timeout=60)


def warn(job_id: str) -> None:
    # what `--signal=TERM@120` does 120 s before the time limit: SIGTERM to the job's steps
    subprocess.run(["scancel", "--signal=TERM", job_id], check=True, timeout=60)


def interrupt_after_first_checkpoint(driver: subprocess.Popen, workdir: Path) -> dict[str, str]:
    """Requeue REQUEUED's job and warn WARNED's, each once its first epoch is saved (they may
    run at the same time); returns cell -> SLURM job id."""
    todo, done = {REQUEUED: requeue, WARNED: warn}, {}
    deadline = time.monotonic() + 900
    while todo and driver.poll() is None and time.monotonic() < deadline:
        for cell in list(todo):
            job_id = ((workdir / "results/state" / cell / "state.pt").is_file()
                      and running_job(cell))
            if job_id:
                todo.pop(cell)(job_id)
                done[cell] = job_id
        time.sleep(0.2)
    assert not todo, f"never interrupted {list(todo)}: " + (workdir / "driver.out").read_text()
    return done


def finish(driver: subprocess.Popen, workdir: Path) -> dict:
    driver.wait(timeout=1600)
    return {"returncode": driver.returncode, "workdir": workdir,
            "output": (workdir / "driver.out").read_text()}


def status_while_running(driver: subprocess.Popen, workdir: Path) -> str:
    """`vocflow status` of the running sweep, once it shows a failed cell (the broken model
    fails at once while the rest of the grid still trains)."""
    def snapshot() -> str | None:
        out = subprocess.run([sys.executable, "-m", "vocflow.cli", "status"], cwd=workdir,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        failed = [line for line in out.stdout.splitlines()
                  if BROKEN_MODEL in line and " failed " in line]
        # a sweep that ended first: its last table, for the test to show
        return out.stdout if failed or driver.poll() is not None else None
    return wait_for(snapshot, 900, "`vocflow status` to show the failed cell mid-sweep")


@pytest.fixture(scope="module")
def runs(slurm_cluster: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every SLURM run of this module. The data (synthetic set, caches, folds) is made once,
    locally, and each run starts from a copy. First the `vocflow submit` drivers, one after the
    other (a driver holds one of the two CPUs); then, together so that both GPUs stay busy, the
    whole study with a model that fails for good (no retry), a failing cell (retried once) and
    two cells interrupted after their first epoch (a requeue, a time-limit warning); last, the
    partial run that builds the study from the grid's finished cells."""
    root = tmp_path_factory.mktemp("slurm")
    started = time.perf_counter()
    (root / "base").mkdir()
    base = copy_workflow(root / "base", "cluster")
    prep = run_snakemake(base, "--profile", "profiles/local", "results/data/folds.csv")
    assert prep.returncode == 0, prep.stderr[-4000:]
    submitted = submit_driver_job(clone(base, root / "submit"))
    drivers: dict[str, tuple[subprocess.Popen, Path]] = {}
    try:
        for name, overlays, args in (
                ("resume", ["cluster_long"], tuple(f"results/{c}/metrics.csv"
                                                   for c in (REQUEUED, WARNED))),
                ("failure", ["cluster_broken"], ("--retries", "1", *BROKEN_CELLS)),
                ("grid", ["cluster_partial"], ("--retries", "0"))):
            workdir = clone(base, root / name, *overlays)
            drivers[name] = (start_driver(workdir, *args), workdir)
        interrupted = interrupt_after_first_checkpoint(*drivers["resume"])
        status = status_while_running(*drivers["grid"])
        results = {name: finish(*driver) for name, driver in drivers.items()}
        grid = results["grid"]["workdir"]
        results["partial"] = finish(start_driver(grid, *PARTIAL), grid)
    finally:
        for driver, _ in drivers.values():
            if driver.poll() is None:
                driver.send_signal(signal.SIGINT)  # Snakemake then cancels its SLURM jobs
                driver.wait(timeout=120)
    results["resume"]["job_ids"] = interrupted
    results["grid"]["status"] = status
    results["submit"] = submitted
    print(f"SLURM runs (local data prep, submit; grid, failure, requeue and warning together; "
          f"partial): {time.perf_counter() - started:.0f} s")
    return results


def jobs_by_rule(output: str) -> dict[str, list[dict]]:
    """sacct's jobs of the run that printed ``output``, by rule or group."""
    by_rule: dict[str, list[dict]] = {}
    for job in sacct("--name", run_id(output)):
        by_rule.setdefault(rule_of(job["Comment"], RULES), []).append(job)
    return by_rule


@pytest.mark.cluster
def test_the_study_is_few_jobs_with_gpus_where_the_work_is(runs: dict) -> None:
    grid, partial = runs["grid"], runs["partial"]
    assert grid["returncode"] != 0  # the broken model's cells failed
    assert partial["returncode"] == 0, partial["output"][-6000:]
    trained, after = jobs_by_rule(grid["output"]), jobs_by_rule(partial["output"])
    train = trained.pop("train_classification") + trained.pop("train_segmentation")
    assert sorted(j["Comment"] for j in train) == sorted(expected_cells(BROKEN_MODEL))
    assert {j["State"] for j in train if "_cnn_broken_" in j["Comment"]} == {"FAILED"}
    # the data steps and the random baseline are one CPU job; nothing else ran before selection
    assert {rule: len(jobs) for rule, jobs in trained.items()} == {"data": 1}
    # after the grid: inference, post-processing, attacks — one job each, one after the other
    assert {rule: len(jobs) for rule, jobs in after.items()} == {"infer": 1, "post": 1,
                                                                 "attack": 1}
    chain = [after[g][0] for g in ("infer", "post", "attack")]
    assert [j["State"] for j in chain] == ["COMPLETED"] * 3
    assert chain[0]["Start"] >= max(j["End"] for j in train)
    assert chain[1]["Start"] >= chain[0]["End"] and chain[2]["Start"] >= chain[1]["End"]
    # at most (training cells + GPU inference jobs + 5) SLURM jobs for the whole study
    total = len(train) + sum(len(j) for j in [*trained.values(), *after.values()])
    assert total <= len(train) + 2 + 5
    # GPUs exactly on training and network inference; the profile names the partitions
    for job in train + after["infer"] + after["attack"]:
        assert "gres/gpu=1" in job["ReqTRES"] and "gres/gpu" in job["AllocTRES"], job
        assert job["Partition"] == "gpu"
    for job in trained["data"] + after["post"]:
        assert "gres/gpu" not in job["ReqTRES"] + job["AllocTRES"], job
        assert job["Partition"] == "cpu"


@pytest.mark.cluster
def test_every_output_exists(runs: dict) -> None:
    r = runs["grid"]["workdir"] / "results"
    for task, (models, losses) in TASK_GRID.items():
        for m in models:
            for loss in losses:
                for k in (0, 1):
                    for name in ("best.pt", "metrics.csv", "oof.npz"):
                        assert (r / task / m / loss / f"fold{k}" / name).is_file()
                    assert not (r / "state" / task / m / loss / f"fold{k}").exists()
    for name in ("submission.csv", "score.yaml", "ablation.csv", "report/index.html",
                 "attacks/summary.csv"):
        assert (r / name).is_file(), name
    # successful jobs' SLURM logs are removed; only the failed cells' are left
    assert {p.parent.name for p in (r / "logs/slurm").rglob("*.log")} == {
        f"{BROKEN_MODEL}_{loss}_{k}" for loss in TASK_GRID["classification"][1] for k in (0, 1)}


@pytest.mark.cluster
def test_partial_run_lists_the_failed_cells(runs: dict) -> None:
    r = runs["grid"]["workdir"] / "results"
    board = pd.read_csv(r / "leaderboard.csv")
    failed = board[board["status"] == "failed"]
    assert set(failed["model"]) == {BROKEN_MODEL} and len(failed) == 2  # × 2 losses
    assert len(board) == 2 * (4 + 1) + 2  # per task: 2 × 2 cells + the random baseline
    selection = yaml.safe_load((r / "classification/selected.yaml").read_text())
    assert selection["partial"] is True and selection["model"] != BROKEN_MODEL
    assert yaml.safe_load((r / "segmentation/selected.yaml").read_text()).get("partial") in (
        None, False)
    html = (r / "report/index.html").read_text()
    assert "Partial grid" in html and BROKEN_MODEL in html


@pytest.mark.cluster
def test_status_shows_the_running_sweep_and_the_failed_cells_log(runs: dict) -> None:
    status = runs["grid"]["status"]
    failed = [line for line in status.splitlines() if BROKEN_MODEL in line and " failed " in line]
    assert failed, status  # its other folds may still be pending or running
    assert f"results/logs/train/classification/{BROKEN_MODEL}/" in status, status
    assert re.search(r"\b(running|pending|done)\b", status), status


@pytest.mark.cluster
def test_second_invocation_submits_nothing(runs: dict) -> None:
    before = len(sacct())
    again = run_snakemake(runs["grid"]["workdir"], *PROFILE, *FAST, *PARTIAL, timeout=300)
    output = again.stdout + again.stderr
    assert again.returncode == 0, output[-3000:]
    assert "Nothing to be done" in output
    assert not SUBMITTED.search(output)
    assert len(sacct()) == before


@pytest.mark.cluster
def test_failed_cell_names_its_slurm_log_and_retries_bigger(runs: dict) -> None:
    failure = runs["failure"]
    output = failure["output"]
    assert failure["returncode"] != 0
    assert "Error in rule train_classification" in output
    logs = set(re.findall(r"(\S+/rule_train_classification/cnn_broken_bce_0/\d+\.log)",
                          output))
    assert len(logs) == 2, output[-6000:]  # the first attempt and its retry, each named
    for log in logs:
        assert Path(log).is_file() and "dropout" in Path(log).read_text()
    assert (failure["workdir"] / BROKEN_CELLS[1]).is_file()  # the other cell completed
    assert not (failure["workdir"] / BROKEN_CELLS[0]).exists()
    attempts = sorted((j for j in sacct("--name", run_id(output))
                       if j["Comment"].endswith("cnn_broken_bce_0")), key=lambda j: int(j["JobID"]))
    assert [j["State"] for j in attempts] == ["FAILED", "FAILED"]
    # the retry asked for twice the time and memory (runtime/mem_mb × attempt)
    assert [j["Timelimit"] for j in attempts] == ["02:00:00", "04:00:00"]
    assert [j["ReqMem"] for j in attempts] == ["1000M", "2000M"]


def check_resumed(workdir: Path, cell: str) -> int:
    """The cell's outputs show one run of every epoch, the later ones after a resume."""
    epochs = LONG_EPOCHS
    metrics = pd.read_csv(workdir / f"results/{cell}/metrics.csv")
    resumed = int(metrics["resumed_from"].max())
    assert 1 <= resumed < epochs, metrics
    assert metrics["epoch"].tolist() == list(range(1, epochs + 1))  # no epoch ran twice
    assert (metrics.loc[metrics["epoch"] <= resumed, "resumed_from"] == 0).all()
    assert (metrics.loc[metrics["epoch"] > resumed, "resumed_from"] == resumed).all()
    # The cell's log is the restarted run's: it resumed and trained only the remaining epochs.
    log = (workdir / f"results/logs/train/{cell}.log").read_text()
    assert f"{resumed} epochs were already done" in log
    assert f"epoch {resumed + 1}/{epochs} " in log and f"epoch {resumed}/{epochs} " not in log
    assert not (workdir / "results/state" / cell).exists()  # cleared after the outputs
    for name in ("best.pt", "oof.npz"):
        assert (workdir / f"results/{cell}/{name}").is_file()
    return resumed


@pytest.mark.cluster
def test_requeued_job_resumes_from_its_last_epoch(runs: dict) -> None:
    resume = runs["resume"]
    assert resume["returncode"] == 0, resume["output"][-6000:]
    check_resumed(resume["workdir"], REQUEUED)
    # sacct -D keeps each run of a requeued job (scontrol forgets ended jobs after MinJobAge)
    runs_of_job = sacct("-D", "-j", resume["job_ids"][REQUEUED])
    assert [j["State"] for j in runs_of_job] == ["REQUEUED", "COMPLETED"], runs_of_job


@pytest.mark.cluster
def test_warned_job_saves_and_its_retry_resumes_with_more_time(runs: dict) -> None:
    resume = runs["resume"]
    assert resume["returncode"] == 0, resume["output"][-6000:]
    check_resumed(resume["workdir"], WARNED)
    attempts = sorted((j for j in sacct("--name", run_id(resume["output"]))
                       if j["Comment"].endswith("cnn_warned_bce_0")), key=lambda j: int(j["JobID"]))
    assert [j["JobID"] for j in attempts][0] == resume["job_ids"][WARNED]
    assert [(j["State"], j["Timelimit"]) for j in attempts] == [("FAILED", "02:00:00"),
                                                               ("COMPLETED", "04:00:00")]
    # the failed attempt's SLURM log is kept and shows the save on the warning (SIGTERM)
    slurm_log = resume["workdir"] / ("results/logs/slurm/rule_train_classification/"
                                     f"cnn_warned_bce_0/{attempts[0]['JobID']}.log")
    assert "stop signal 15: state saved" in slurm_log.read_text()


@pytest.mark.cluster
def test_vocflow_submit_runs_the_driver_as_a_job(runs: dict) -> None:
    submit = runs["submit"]
    log = Path(re.search(r"driver log: (\S+)", submit["stdout"]).group(1))
    assert log.parent == submit["workdir"] / "results/logs/driver"
    text = log.read_text() if log.is_file() else ""
    assert submit["job"]["State"] == "COMPLETED", text[-4000:]
    # the driver is a light CPU job on the profile's CPU partition
    assert submit["job"]["Partition"] == "cpu" and "gres/gpu" not in submit["job"]["ReqTRES"]
    assert (submit["workdir"] / SUBMIT_TARGET).is_file()
    assert "submitted with SLURM jobid" in text and "steps (100%) done" in text


@pytest.mark.cluster
def test_cancelled_driver_cancels_its_jobs(runs: dict) -> None:
    cancelled = runs["submit"]["cancelled"]
    assert cancelled["driver"]["State"].startswith("CANCELLED")
    # `scancel` on the driver reached its handler, which cancelled the training job instead of
    # leaving it to run on without a driver. The handler also passes SIGINT to Snakemake, which
    # may cancel the job first; whether Snakemake prints before SLURM's SIGKILL (KillWait = 5 s)
    # depends on the machine's load, so either log line shows who cancelled it.
    assert cancelled["cell"]["State"].startswith("CANCELLED"), cancelled
    text = cancelled["log"].read_text()
    assert ("cancelling the driver's jobs" in text
            or "Terminating processes on user request" in text), text[-3000:]
