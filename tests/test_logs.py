"""Rule logs: a fresh job starts an empty file; a resumable one appends to the killed attempt's."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from vocflow.logs import setup_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """setup_logging replaces the root logger's handlers (pytest's among them): put them back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
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
