"""The config: checked against its JSON schema with one line per problem, and typed sections of
the validated config (a plain dict loaded from YAML)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import yaml

from vocflow.errors import ConfigError, one_line

T = TypeVar("T")
_JSON_TYPES = {"integer": "an integer", "number": "a number", "string": "a string",
               "boolean": "true or false", "array": "a list", "object": "a mapping",
               "null": "null"}


def from_fields(cls: type[T], data: Mapping[str, Any], what: str) -> T:
    """Build dataclass ``cls`` from ``data``, naming unknown keys and the valid ones."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown {what} {unknown}; valid: {sorted(known)}")
    return cls(**data)


# ----------------------------------------------------------------------------- schema


def check_config(config: Mapping[str, Any], schema_path: str | Path) -> None:
    """Raise a ConfigError with one line per violation of the schema (key path, what was
    expected), instead of jsonschema's dump of the schema and the instance."""
    problems = schema_problems(config, yaml.safe_load(Path(schema_path).read_text()))
    if problems:
        raise ConfigError("\n".join(f"{line}; fix config/config.yaml (or the --configfile "
                                    "that sets it)" for line in problems))


def schema_problems(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """De-duplicated lines ``config KEY.PATH: what is wrong``, sorted by key path."""
    validator = jsonschema.Draft202012Validator(schema)
    lines = {line for error in validator.iter_errors(config)
             for line in _lines(error, schema)}
    return sorted(lines, key=lambda line: (line.split(":")[0], line))


def _key_path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _short(value: Any) -> str:
    return one_line(repr(value), 60)


def _properties(node: Mapping[str, Any], root: Mapping[str, Any]) -> set[str]:
    """Keys declared by a schema node, following local ``$ref`` and ``allOf``."""
    keys = set(node.get("properties", {}))
    ref = node.get("$ref", "")
    if ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        keys |= _properties(target, root)
    for sub in node.get("allOf", []):
        keys |= _properties(sub, root)
    return keys


def _lines(error: jsonschema.ValidationError, root: Mapping[str, Any]) -> list[str]:
    path = list(error.absolute_path)
    where = f"config {_key_path(path)}"
    kind, value = error.validator, error.instance
    if kind in ("additionalProperties", "unevaluatedProperties") and isinstance(value, dict):
        valid = _properties(error.schema, root)
        extra = [k for k in value if k not in valid] if valid else list(value)
        hint = f"; valid: {', '.join(sorted(valid))}" if valid else ""
        return [f"config {_key_path([*path, k])}: unknown key{hint}" for k in extra]
    if kind == "required":
        return [f"{where}: missing key '{k}'" for k in error.validator_value
                if isinstance(value, dict) and k not in value]
    if kind == "type":
        wanted = error.validator_value
        names = [_JSON_TYPES.get(t, t) for t in ([wanted] if isinstance(wanted, str) else wanted)]
        return [f"{where}: {_short(value)} is not {' or '.join(names)}"]
    if kind == "enum":
        valid = ", ".join(map(str, error.validator_value))
        return [f"{where}: {_short(value)} is not one of {valid}"]
    return [f"{where}: {one_line(error.message, 200)}"]
