"""Typed sections of the validated config (a plain dict loaded from YAML)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from vocflow.errors import ConfigError

T = TypeVar("T")


def from_fields(cls: type[T], data: Mapping[str, Any], what: str) -> T:
    """Build dataclass ``cls`` from ``data``, naming unknown keys and the valid ones."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown {what} {unknown}; valid: {sorted(known)}")
    return cls(**data)
