"""Logging and error reporting for workflow jobs: everything (including warnings and the reason
a job failed) goes to the rule's log and to stderr.

The one mechanism for errors: ``setup_logging`` installs an excepthook, so a script that raises
needs no handling of its own. A VocflowError (bad data, bad config, an unreadable file) becomes
its one-line message, logged at ERROR without a traceback; any other exception is a bug and is
logged with its full traceback. Either way the job exits non-zero, and the line is in the
rule's log file (hence in the SLURM job's log) as well as on the terminal. Code that runs in
Snakemake's own process (the Snakefile's checks) uses ``user_errors`` instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from vocflow.errors import VocflowError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
log = logging.getLogger(__name__)


def setup_logging(path: str | Path | None = None, level: int = logging.INFO,
                  append: bool = False) -> None:
    """Send the root logger to ``path`` (and stderr), replacing earlier handlers, and report
    uncaught exceptions there (see the module docstring).

    ``append``: keep what the file holds (a requeued training job's log then shows the
    interrupted attempt above the resumed one); otherwise the file starts empty.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="a" if append else "w"))
    logging.basicConfig(level=level, format=FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)
    sys.excepthook = excepthook
    if append:  # where one attempt ends and the next begins
        log.info("---- job started (pid %d) ----", os.getpid())


def error_lines(exc: VocflowError) -> list[str]:
    """The user's lines of ``exc``: one per line of its message (a config check reports one
    line per problem), each led by the error's kind."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return [f"{type(exc).__name__}: {line}" for line in lines or ["(no message)"]]


def excepthook(kind: type[BaseException], exc: BaseException,
               tb: TracebackType | None) -> None:
    """Report an uncaught exception through logging (stderr and the rule's log)."""
    if isinstance(exc, VocflowError):
        for line in error_lines(exc):
            log.error("%s", line)
    elif isinstance(exc, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    else:
        log.critical("unexpected error, the traceback follows", exc_info=(kind, exc, tb))
    for handler in logging.getLogger().handlers:
        handler.flush()


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """For checks in Snakemake's own process (config and grid checks while the Snakefile is
    parsed): a VocflowError ends the process with its lines on stderr and exit status 1; a
    traceback would only bury them."""
    try:
        yield
    except VocflowError as exc:
        raise SystemExit("\n".join(error_lines(exc))) from None
