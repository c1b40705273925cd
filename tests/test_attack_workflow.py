"""The attack rules in the workflow: jobs per task × method, none when off, bad names fail early.

Dry runs only; the tiny end-to-end run of tests/test_workflow.py executes them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import copy_workflow, job_counts
from test_workflow import snakemake

from vocflow.attacks import ATTACKS

pytestmark = pytest.mark.workflow


def dry_run(tmp_path: Path, overlay: str) -> tuple[int, str]:
    workdir = copy_workflow(tmp_path, overlay)
    result = snakemake(workdir, "-n", "--quiet", "rules")
    return result.returncode, result.stdout + result.stderr


def test_one_job_per_task_and_method(tmp_path: Path) -> None:
    code, text = dry_run(tmp_path, "attacks_two")
    assert code == 0, text[-3000:]
    counts = job_counts(text)
    assert counts["attack"] == 2 * 2 and counts["attack_summary"] == 1


def test_no_methods_means_no_attack_jobs(tmp_path: Path) -> None:
    code, text = dry_run(tmp_path, "attacks_none")
    assert code == 0, text[-3000:]
    assert "attack" not in job_counts(text)


def test_unknown_method_fails_before_any_job(tmp_path: Path) -> None:
    code, text = dry_run(tmp_path, "attacks_unknown")
    assert code != 0
    assert f"unknown attack 'cw'; valid: {', '.join(ATTACKS.names())}" in text
    assert not (tmp_path / "results").exists()
