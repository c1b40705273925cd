"""Name -> constructor registries for models, losses (and later attacks).

An unknown name fails with the list of valid names, so a typo in config/config.yaml is caught
at the first job instead of after hours of queueing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from vocflow.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def add(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._builders[name] = builder
            return builder

        return add

    def names(self) -> list[str]:
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def get(self, name: str) -> Callable[..., T]:
        """The constructor registered as ``name`` (unknown names list the valid ones)."""
        if name not in self._builders:
            raise ConfigError(f"unknown {self.kind} '{name}'; valid: {', '.join(self.names())}")
        return self._builders[name]

    def build(self, name: str, **params: Any) -> T:
        builder = self.get(name)
        try:
            return builder(**params)
        except TypeError as err:
            raise ConfigError(f"bad parameters {params} for {self.kind} '{name}': {err}") from err
