"""best.pt: a zero-byte, truncated, garbage, pickled or foreign file is one line naming the file
and the command that re-creates it (never an OSError/EOFError from torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from vocflow.checkpoints import load_checkpoint
from vocflow.errors import DataError


def _truncated(path: Path) -> None:
    torch.save({"state_dict": {"w": torch.zeros(1000)}, "meta": {}}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE: dict[str, tuple[Any, str]] = {
    "empty": (lambda p: p.write_bytes(b""), "the file is empty (0 bytes)"),
    "truncated": (_truncated, "not a complete torch checkpoint"),
    "garbage": (lambda p: p.write_bytes(b"\x00garbage" * 100), "not a complete torch checkpoint"),
    "pickled object": (lambda p: torch.save({"meta": Path("x")}, p), "refuses to unpickle"),
    "foreign payload": (lambda p: torch.save(torch.zeros(3), p),
                        "not a complete vocflow checkpoint"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_broken_checkpoint_is_one_line(tmp_path: Path, case: str) -> None:
    damage, found = DAMAGE[case]
    path = tmp_path / "fold0" / "best.pt"
    path.parent.mkdir()
    damage(path)
    with pytest.raises(DataError) as info:
        load_checkpoint(path, torch.device("cpu"))
    message = str(info.value)
    assert message.startswith(f"cannot read {path}: ") and found in message
    assert message.endswith(f"re-create it with: snakemake --forcerun {path}")
    assert "\n" not in message and "weights_only=False" not in message
