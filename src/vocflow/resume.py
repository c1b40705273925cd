"""Resumable training: a state directory per cell, written atomically, and stop signals.

Layout of a state directory (outside Snakemake's declared outputs, which it deletes before a
job restarts)::

    state.pt        where the run stands: next (epoch, batch), model, optimiser, schedule,
                    grad scaler, RNG states, metric rows, best score/epoch, early-stop counter,
                    and the settings fingerprint
    best_e{k}.pt    the best epoch's checkpoint payload (written when a new best appears)

``state.pt`` names its best file, and a best file is deleted only after a state naming a newer
one is in place, so a kill between any two writes leaves a consistent pair. A state that cannot
be read back (a truncated or foreign file: a full disk, a copy gone wrong) is moved aside to
``{dir}.corrupt-{time}`` with a warning naming it, and the cell starts afresh: a retry never
fails on it again.

SLURM sends SIGTERM on preemption, ``scontrol requeue`` and at the time limit, and the signal
chosen with ``--signal`` some time before it (profiles/slurm asks for SIGTERM 120 s early;
SIGUSR1 is handled too, for profiles that send it to the batch step). ``stop_signals`` turns
both into a flag that the training loop reads after every batch: it saves the state and raises
``Interrupted`` (a SystemExit with a non-zero code), so the job ends as failed and is re-run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vocflow.atomic import torch_save
from vocflow.errors import one_line

log = logging.getLogger(__name__)
STATE_FILE = "state.pt"
STATE_VERSION = 1  # bump when the state's layout changes: older states then start fresh
STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


class Interrupted(SystemExit):
    """Raised after the state was saved on a stop signal; exit code 128 + signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def fingerprint(settings: dict[str, Any], **context: Any) -> str:
    """sha256 of the settings plus ``context`` (fold, data identity, ...), key-order free."""
    text = json.dumps({"v": STATE_VERSION, "settings": settings, **context}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Names of the settings that differ, for the log line that explains a fresh start."""
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k)]


def rng_state() -> dict[str, Any]:
    """Every global generator a training step may draw from (dropout, augmentation helpers),
    as tensors and plain types so ``torch.load(weights_only=True)`` reads them back."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(), "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):  # resumed on a node with fewer GPUs
            torch.cuda.set_rng_state_all(state["cuda"])


class StateStore:
    """The state directory of one cell (see the module docstring)."""

    def __init__(self, directory: str | Path, fingerprint: str,
                 root: str | Path | None = None) -> None:
        """``root``: a folder above ``directory`` (e.g. results/state) up to which ``clear``
        also removes the parents it leaves empty; None = only ``directory`` itself."""
        self.dir, self.fingerprint = Path(directory), fingerprint
        self.root = Path(root) if root is not None else None
        self._best: tuple[str, dict[str, Any]] | None = None  # read by load, served by load_best

    def load(self, settings: dict[str, Any]) -> dict[str, Any] | None:
        """The saved state if it belongs to this run; None (and why, in the log) otherwise.

        The best file the state names is read here too, so an unreadable one sets the whole
        state aside before anything of it is used.
        """
        path = self.dir / STATE_FILE
        if not path.is_file():
            return None
        try:
            state = self._read(path)
            if state.get("fingerprint") != self.fingerprint:
                keys = changed_keys(state.get("settings", {}), settings) or ["data or fold"]
                log.warning("starting fresh: resume state %s was saved with other settings "
                            "(changed: %s)", path, ", ".join(keys))
                return None
            name = state["run"]["best_file"]
            if name:
                path = self.dir / name
                self._best = (name, self._read(path))
        except Exception as exc:  # whatever is wrong with the files: never fatal, start afresh
            self.set_aside(path, exc)
            return None
        return state

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, dict):
            raise TypeError(f"holds a {type(data).__name__}, not a mapping")
        return data

    def set_aside(self, path: Path, exc: BaseException) -> None:
        """Move the state directory out of the way (kept for inspection), naming it."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.dir.with_name(f"{self.dir.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target, n = self.dir.with_name(f"{self.dir.name}.corrupt-{stamp}-{n}"), n + 1
        self.dir.rename(target)
        self._best = None
        log.warning("cannot read resume file %s (%s): moved the cell's state to %s (delete it "
                    "when no longer needed); the cell starts afresh", path,
                    one_line(exc) or type(exc).__name__, target)

    def save(self, state: dict[str, Any], best_file: str) -> None:
        """Write ``state`` (which names ``best_file``), then drop every other best file."""
        torch_save(self.dir / STATE_FILE, {**state, "fingerprint": self.fingerprint})
        for old in self.dir.glob("best_e*.pt"):
            if old.name != best_file:
                old.unlink(missing_ok=True)

    def save_best(self, epoch: int, payload: dict[str, Any]) -> str:
        name = f"best_e{epoch}.pt"
        torch_save(self.dir / name, payload)
        return name

    def load_best(self, name: str) -> dict[str, Any]:
        if self._best is not None and self._best[0] == name:
            return self._best[1]
        return self._read(self.dir / name)

    def clear(self) -> None:
        """Remove the state after the cell's outputs are written (see vocflow.train)."""
        for path in [self.dir / STATE_FILE, *self.dir.glob("best_e*.pt")]:
            path.unlink(missing_ok=True)
        folder = self.dir
        while True:
            try:
                folder.rmdir()
            except OSError:  # not empty (another cell's state, someone's files): leave it
                return
            folder = folder.parent
            if self.root is None or folder == self.root or self.root not in folder.parents:
                return


class StopFlag:
    """Set by a stop signal; read by the training loop at its safe points."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None

    def set(self, signum: int, frame: Any = None) -> None:
        self.signum = signum


@contextlib.contextmanager
def stop_signals() -> Iterator[StopFlag]:
    """Route SIGUSR1 and SIGTERM to a StopFlag while the block runs (main thread only:
    elsewhere Python cannot install handlers, and the flag simply never gets set)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.signal(sig, flag.set) for sig in STOP_SIGNALS}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def ignore_stop_signals() -> None:
    """For DataLoader workers: only the main process reacts (it saves, then shuts them down);
    a worker killed by the same signal would make the loader fail before the save."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
