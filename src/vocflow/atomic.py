"""Atomic file writes: a killed job never leaves a file that looks complete.

Each writer writes to a hidden temporary file in the destination's directory and renames it
into place (``os.replace`` is atomic on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


def save_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    # Uncompressed: probabilities are re-read often and compression costs more than disk here.
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def write_csv(path: str | os.PathLike[str], frame: pd.DataFrame, index: bool = False) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=index)


def write_yaml(path: str | os.PathLike[str], data: Any) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def torch_save(path: str | os.PathLike[str], obj: Any) -> None:
    import torch  # local: keeps torch out of light rules' import time

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
