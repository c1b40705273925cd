"""Atomic file writes: a killed job never leaves a file that looks complete.

Each writer writes to a hidden temporary file in the destination's directory and renames it
into place (``os.replace`` is atomic on POSIX within one file system). The file gets the mode
any new file gets under the user's umask (``mkstemp`` alone makes it private, 0600, and the
rename keeps that), so colleagues on a shared file system can read the results.
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


def current_umask() -> int:
    """The process umask. Linux shows it in /proc/self/status; elsewhere it can only be read by
    setting it (and back), which races with threads creating files meanwhile."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0o666 less the umask."""
    return 0o666 & ~current_umask()


def new_dir_mode() -> int:
    """The mode ``mkdir`` gives a new folder: 0o777 less the umask."""
    return 0o777 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, new_file_mode())  # mkstemp made it 0600
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


def symlink(target: str | os.PathLike[str], link: str | os.PathLike[str]) -> None:
    """Point ``link`` at ``target`` (stored relative to the link's folder, so a moved results/
    keeps working), replacing whatever ``link`` was in one rename: a reader sees the old or the
    new link, never none."""
    dest = Path(link)
    dest.parent.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(Path(target).absolute(), dest.parent.absolute())
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.link"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(relative, tmp)
    os.replace(tmp, dest)
