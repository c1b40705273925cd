"""Atomic writes: a complete file or none, with the mode the user's umask gives a new file."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vocflow import atomic

WRITERS: dict[str, Callable[[Path], None]] = {
    "npy": lambda p: atomic.save_npy(p, np.zeros(3)),
    "npz": lambda p: atomic.save_npz(p, a=np.zeros(3)),
    "csv": lambda p: atomic.write_csv(p, pd.DataFrame({"a": [1]})),
    "yaml": lambda p: atomic.write_yaml(p, {"a": 1}),
    "txt": lambda p: atomic.write_text(p, "a"),
    "pt": lambda p: atomic.torch_save(p, {"a": 1}),
}


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("kind", WRITERS)
@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_get_the_mode_of_a_new_file(tmp_path: Path, umask, kind: str, mask: int,
                                            mode: int) -> None:
    umask(mask)
    path = tmp_path / "out" / f"file.{kind}"
    WRITERS[kind](path)
    plain = tmp_path / "plain"
    plain.write_text("x")  # what the OS gives a new file under this umask
    assert stat.S_IMODE(path.stat().st_mode) == mode == stat.S_IMODE(plain.stat().st_mode)
    assert atomic.current_umask() == mask
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic.atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
