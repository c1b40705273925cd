"""Progress of a training run: tqdm bars on a terminal, periodic log lines otherwise.

SLURM (and Snakemake's log files) capture stderr as a file, where a bar's carriage returns
become thousands of lines; there a plain line every ``interval_s`` seconds says the same.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

log = logging.getLogger(__name__)
T = TypeVar("T")
INTERVAL_S = 60.0  # seconds between plain progress lines in a log file


def on_terminal() -> bool:
    return sys.stderr.isatty()


def epochs_bar(epochs: Iterable[T], total: int, initial: int) -> Iterator[T]:
    """A bar over epochs on a terminal; in a log file the epoch lines themselves suffice."""
    if not on_terminal():
        yield from epochs
        return
    yield from tqdm(epochs, total=total, initial=initial, desc="epochs", unit="epoch",
                    file=sys.stderr, dynamic_ncols=True)


class BatchProgress:
    """Per-batch progress of one epoch: ``step(images, loss)`` after every batch."""

    def __init__(self, total: int, desc: str, initial: int = 0,
                 interval_s: float = INTERVAL_S) -> None:
        self.total, self.desc, self.done, self.images = total, desc, initial, 0
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=False,
                        file=sys.stderr, dynamic_ncols=True) if on_terminal() else None
        # A bar's loss refreshes twice a second; a log line comes every interval_s.
        self.period = 0.5 if self.bar is not None else interval_s
        self.start = self.last = time.perf_counter()

    def wants_loss(self) -> bool:
        """True when ``step`` would show the loss (callers fetch it only then: on a GPU,
        reading a loss waits for the device)."""
        return time.perf_counter() - self.last >= self.period

    def step(self, images: int, loss: float | None = None) -> None:
        self.done, self.images = self.done + 1, self.images + images
        now = time.perf_counter()
        due = now - self.last >= self.period
        if self.bar is not None:
            self.bar.update(1)
            if loss is not None and due:
                self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                self.last = now
        elif due and self.done < self.total:
            self.last = now
            rate = self.images / max(now - self.start, 1e-9)
            loss_text = f" loss {loss:.4f}" if loss is not None else ""
            log.info("%s: batch %d/%d%s, %.1f img/s", self.desc, self.done, self.total,
                     loss_text, rate)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
