"""Rule logs: a fresh job starts an empty file; a resumable one appends to the killed attempt's;
a job's error reaches the log and stderr as one line (a user error) or a traceback (a bug)."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vocflow.errors import ConfigError
from vocflow.logs import setup_logging, user_errors


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """setup_logging replaces the root logger's handlers (pytest's among them): put them back."""
    root = logging.getLogger()
    handlers, level, hook = root.handlers[:], root.level, sys.excepthook
    yield
    sys.excepthook = hook
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def lines(path: Path) -> list[str]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return [line.split(": ", 1)[1] for line in path.read_text().splitlines()]


def test_append_keeps_the_interrupted_attempt(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "cell.log"
    setup_logging(log, append=True)
    logging.getLogger("vocflow.test").info("epoch 1")
    setup_logging(log, append=True)  # the requeued job
    logging.getLogger("vocflow.test").info("resumed at epoch 2")
    text = lines(log)
    assert text[1] == "epoch 1" and text[3] == "resumed at epoch 2"
    assert text[0].startswith("---- job started") and text[2].startswith("---- job started")


def test_default_starts_an_empty_log(tmp_path: Path) -> None:
    log = tmp_path / "rule.log"
    log.write_text("an earlier run\n")
    setup_logging(log)
    logging.getLogger("vocflow.test").warning("this run")
    assert lines(log) == ["this run"]


SCRIPT = """
import sys
from vocflow.errors import DataError
from vocflow.logs import setup_logging
setup_logging(sys.argv[1])
if sys.argv[2] == "user":
    raise DataError("data/x.npy: the file is empty (0 bytes); replace the file")
{}["missing key"]  # a bug
"""


def run_job(tmp_path: Path, kind: str) -> tuple[subprocess.CompletedProcess, str]:
    log = tmp_path / "logs" / "job.log"
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(log), kind], capture_output=True,
                            text=True, timeout=60)
    return result, log.read_text()


def test_a_user_error_is_one_line_in_the_log_and_on_stderr(tmp_path: Path) -> None:
    result, log = run_job(tmp_path, "user")
    line = "DataError: data/x.npy: the file is empty (0 bytes); replace the file"
    assert result.returncode != 0
    assert [ln for ln in result.stderr.splitlines() if ln.strip()] == [
        ln for ln in log.splitlines()]
    assert len(log.splitlines()) == 1 and log.rstrip().endswith(line)
    assert "Traceback" not in result.stderr + log


def test_an_unexpected_error_keeps_its_traceback_in_the_log(tmp_path: Path) -> None:
    result, log = run_job(tmp_path, "bug")
    assert result.returncode != 0
    for text in (result.stderr, log):
        assert "unexpected error" in text and "Traceback" in text
        assert "KeyError: 'missing key'" in text


def test_user_errors_exit_with_one_line_per_problem() -> None:
    with pytest.raises(SystemExit) as info, user_errors():
        raise ConfigError("config a.b: unknown key\nconfig c: missing key 'd'")
    assert str(info.value.code).splitlines() == [
        "ConfigError: config a.b: unknown key", "ConfigError: config c: missing key 'd'"]
    with pytest.raises(KeyError), user_errors():  # a bug is not a user error
        raise KeyError("x")
