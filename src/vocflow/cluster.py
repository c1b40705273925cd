"""Submit the Snakemake driver itself as a long, low-resource SLURM job (via submitit).

A sweep driven from a login-node shell dies with the shell; as a SLURM job the driver keeps
submitting and watching the grid's jobs after the user logs out. The driver's partition,
account and QoS come from the cluster profile (``default-resources: slurm_partition,
slurm_account``; ``slurm-qos``), the one place users adapt to their cluster.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vocflow.errors import ConfigError, VocflowError
from vocflow.logs import setup_logging

log = logging.getLogger(__name__)

# SLURM partition/account/QoS names: no spaces, quotes or shell syntax.
SLURM_NAME = re.compile(r"^[A-Za-z0-9_.:+-]+$")


@dataclass(frozen=True)
class DriverSettings:
    """sbatch settings of the driver job (time in minutes)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_min: int = 3 * 24 * 60
    mem_mb: int = 4000
    cpus: int = 1


@dataclass(frozen=True)
class DriverJob:
    job_id: str
    log: Path  # the driver's stdout + stderr (Snakemake's progress)


def checked_name(value: Any, what: str, source: Path) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    if not SLURM_NAME.match(text):
        raise ConfigError(f"{source}: {what} '{text}' is not a SLURM name (letters, digits, "
                          "_ . : + - only); fix it there")
    return text


def profile_settings(profile: str | Path, **overrides: Any) -> DriverSettings:
    """Driver settings from ``PROFILE/config.yaml``; non-None ``overrides`` win."""
    path = Path(profile) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"profile {profile} has no config.yaml; pass --profile DIR, e.g. "
                          "profiles/slurm")
    data = yaml.safe_load(path.read_text()) or {}
    defaults = data.get("default-resources") or {}
    found = {"partition": defaults.get("slurm_partition"),
             "account": defaults.get("slurm_account"), "qos": data.get("slurm-qos")}
    found.update({k: v for k, v in overrides.items() if v is not None})
    names = {k: checked_name(found[k], k, path) for k in ("partition", "account", "qos")}
    numbers = {k: int(v) for k, v in found.items() if k not in names}
    return DriverSettings(**names, **numbers)


def driver_command(profile: str | Path, snakemake_args: Sequence[str],
                   python: str = sys.executable) -> list[str]:
    """The driver as an argument list (never a shell string): snakemake --profile PROFILE ..."""
    args = [str(a) for a in snakemake_args]
    if any("\0" in a for a in args):
        raise ConfigError("a snakemake argument contains a NUL byte; check the command line")
    return [python, "-m", "snakemake", "--profile", str(profile), *args]


def cancel_jobs_named(prefix: str) -> None:
    """scancel every job of this user whose name starts with ``prefix``."""
    listing = subprocess.run(["squeue", "-h", "--me", "-o", "%i %j"], capture_output=True,
                             text=True, timeout=60, check=False).stdout
    rows = (line.split() for line in listing.splitlines())
    ids = [row[0] for row in rows if len(row) == 2 and row[1].startswith(prefix)]
    if ids:
        log.info("cancelling the driver's jobs %s", ids)
        subprocess.run(["scancel", *ids], timeout=60, check=False)


def run_driver(command: list[str], workdir: str) -> int:
    """Runs inside the SLURM job: the driver in ``workdir``; fails the job when Snakemake fails.

    `scancel` sends SIGTERM, on which Snakemake only stops submitting and waits for its jobs
    (and may be killed before its next status poll), leaving them orphaned. So the driver's
    jobs are named after this job, and on SIGTERM they are cancelled here, and Snakemake gets
    SIGINT.
    """
    setup_logging()  # this runs in a fresh process: the job's log is stderr
    prefix = f"vocflow_d{os.environ.get('SLURM_JOB_ID', 'local')}"
    with subprocess.Popen([*command, "--slurm-jobname-prefix", prefix], cwd=workdir) as proc:

        def stop(signum: int, frame: Any) -> None:
            # SIGINT reaches Snakemake from SLURM itself (all processes of the job get it)
            if signum == signal.SIGTERM:
                proc.send_signal(signal.SIGINT)
                cancel_jobs_named(f"{prefix}_")

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            code = proc.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if code != 0:
        raise RuntimeError(f"snakemake exited with status {code}; see this log above")
    return code


def submit_driver(workdir: str | Path, profile: str | Path, snakemake_args: Sequence[str],
                  log_dir: str | Path, settings: DriverSettings) -> DriverJob:
    """Submit the driver with submitit; return its SLURM job id and log path."""
    import submitit  # imported here: the rest of vocflow must not need it

    workdir = Path(workdir).resolve()
    profile_dir = profile if Path(profile).is_absolute() else workdir / profile
    command = driver_command(Path(profile_dir), snakemake_args)
    executor = submitit.SlurmExecutor(folder=workdir / log_dir, max_num_timeout=0)
    # use_srun (submitit's default): the driver runs in a job step, which `scancel` gives
    # SIGTERM and KillWait seconds to cancel its jobs (the batch shell dies at once, and with
    # it everything else in the batch step); stderr_to_stdout: one log to read.
    params: dict[str, Any] = {"job_name": "vocflow-driver", "time": settings.time_min,
                              "cpus_per_task": settings.cpus, "mem": f"{settings.mem_mb}MB",
                              "use_srun": True, "stderr_to_stdout": True}
    for key in ("partition", "account", "qos"):
        if getattr(settings, key):
            params[key] = getattr(settings, key)
    executor.update_parameters(**params)
    try:
        job = executor.submit(run_driver, command, str(workdir))
    except (OSError, RuntimeError) as err:  # no sbatch, or sbatch refused (submitit's errors)
        reason = " ".join(str(err).split())[-300:]
        raise VocflowError(f"could not submit the driver ({reason}); check SLURM and the "
                           f"partition/account/qos in {profile_dir}/config.yaml") from err
    log.info("driver command: %s", command)
    return DriverJob(job_id=str(job.job_id), log=Path(job.paths.stdout))
