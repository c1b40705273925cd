"""Logging setup for workflow jobs: everything (including warnings) goes to the rule's log."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(path: str | Path | None = None, level: int = logging.INFO,
                  append: bool = False) -> None:
    """Send the root logger to ``path`` (and stderr), replacing earlier handlers.

    ``append``: keep what the file holds (a requeued training job's log then shows the
    interrupted attempt above the resumed one); otherwise the file starts empty.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="a" if append else "w"))
    logging.basicConfig(level=level, format=FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)
    if append:  # where one attempt ends and the next begins
        logging.getLogger(__name__).info("---- job started (pid %d) ----", os.getpid())
