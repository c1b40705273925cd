"""Random hyper-parameter search as grid variants (the original study used a Keras-tuner random
search over filters, kernel sizes, batch-norm on/off, dense units, dropout and learning rate).

A ``search_space`` entry in the config names a prefix, the task, the registry ``arch``, how many
variants to draw (``n``) and per key a fixed value or a distribution::

    search_space:
      cnn_rs:
        task: classification
        arch: cnn
        n: 8
        params:
          widths: {choice: [[16, 32, 64], [32, 64, 128]]}
          kernel_size: {choice: [3, 5]}
          dropout: {uniform: [0.0, 0.5]}
          lr: {loguniform: [0.0001, 0.01]}
          dense: {int: [64, 256]}

``sample_search`` draws ``cnn_rs000 … cnn_rs007``; the written YAML holds them under
``variants:`` and lists them (after the config's own models) under ``<task>.models``, so
``snakemake --configfile config/config.yaml FILE`` runs the search as a larger grid (Snakemake
merges later config files into earlier ones key by key; lists are replaced).
"""

from __future__ import annotations

import copy
import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from vocflow.artifacts import TASKS
from vocflow.atomic import write_text
from vocflow.errors import ConfigError
from vocflow.grid import TRAIN_KEYS
from vocflow.models import build_model

DISTRIBUTIONS = ("choice", "uniform", "loguniform", "int")


def _round(value: float, digits: int = 3) -> float:
    """``digits`` significant digits: readable YAML, and near-identical draws stay apart."""
    if value == 0:
        return 0.0
    return float(round(value, digits - 1 - math.floor(math.log10(abs(value)))))


def sample_value(spec: Any, rng: np.random.Generator, where: str) -> Any:
    """One draw from ``spec``: a one-key mapping naming a distribution, or a fixed value."""
    if not isinstance(spec, dict):
        return spec
    if len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: {spec} must be one of {{choice: [...]}}, "
                          "{uniform: [lo, hi]}, {loguniform: [lo, hi]}, {int: [lo, hi]} or a "
                          "fixed value")
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ConfigError(f"{where}: choice needs a non-empty list, got {args!r}")
        return copy.deepcopy(args[int(rng.integers(len(args)))])  # no shared YAML anchors
    if not (isinstance(args, list) and len(args) == 2 and args[0] <= args[1]):
        raise ConfigError(f"{where}: {kind} needs [low, high] with low <= high, got {args!r}")
    lo, hi = args
    if kind == "int":
        return int(rng.integers(int(lo), int(hi) + 1))
    if kind == "loguniform":
        if lo <= 0:
            raise ConfigError(f"{where}: loguniform needs low > 0, got {lo}")
        return _round(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return _round(rng.uniform(lo, hi))


def sample_space(prefix: str, entry: dict[str, Any], seed: int,
                 n: int | None = None) -> dict[str, dict[str, Any]]:
    """``n`` (default ``entry['n']``) variants named ``{prefix}000…``, reproducible per seed."""
    count = int(n if n is not None else entry.get("n", 8))
    # The prefix enters the seed, so adding a space leaves the draws of the others unchanged.
    rng = np.random.default_rng([seed, zlib.crc32(prefix.encode())])
    params = entry.get("params") or {}
    variants = {}
    for i in range(count):
        drawn = {k: sample_value(v, rng, f"search_space.{prefix}.params.{k}")
                 for k, v in params.items()}
        variants[f"{prefix}{i:03d}"] = {"arch": entry["arch"], **drawn}
    return variants


def check_variant(task: str, name: str, variant: dict[str, Any]) -> None:
    """Build the variant's model once on the meta device (no memory, no weights) so a wrong
    parameter name fails now rather than in a queued job."""
    params = {k: v for k, v in variant.items() if k != "arch" and k not in TRAIN_KEYS}
    params["pretrained"] = False
    try:
        with torch.device("meta"):
            build_model(task, variant["arch"], 2, **params)
    except ConfigError as err:
        raise ConfigError(f"search_space variant {name}: {err}") from err


def sample_search(config: dict[str, Any], seed: int = 0, n: int | None = None,
                  spaces: list[str] | None = None) -> dict[str, Any]:
    """The config fragment (variants + models lists) of a random search over ``spaces``."""
    space = config.get("search_space") or {}
    chosen = spaces or sorted(space)
    unknown = [s for s in chosen if s not in space]
    if not chosen or unknown:
        raise ConfigError(f"search_space has no entries {unknown or ''}; valid: {sorted(space)}")
    existing = set(config.get("variants") or {})
    variants: dict[str, Any] = {}
    models = {task: list(config[task]["models"]) for task in TASKS}
    for prefix in chosen:
        entry = space[prefix]
        if entry.get("task") not in TASKS:
            raise ConfigError(f"search_space.{prefix}.task must be one of {list(TASKS)}")
        drawn = sample_space(prefix, entry, seed, n)
        clash = sorted((set(drawn) & existing) | (set(drawn) & set(models[entry["task"]])))
        if clash:
            raise ConfigError(f"sampled names {clash} already exist in the config; rename the "
                              f"search_space entry '{prefix}'")
        for name, variant in drawn.items():
            check_variant(entry["task"], name, variant)
        variants.update(drawn)
        models[entry["task"]] += list(drawn)
    fragment: dict[str, Any] = {"variants": variants}
    for task in TASKS:
        if models[task] != list(config[task]["models"]):
            fragment[task] = {"models": models[task]}
    return fragment


def write_search(config_path: str | Path, out: str | Path, seed: int = 0, n: int | None = None,
                 spaces: list[str] | None = None) -> dict[str, Any]:
    """Sample from the ``search_space`` of ``config_path`` and write the fragment to ``out``."""
    with open(config_path) as fh:
        config = yaml.safe_load(fh)
    fragment = sample_search(config, seed, n, spaces)
    header = (f"# Random search sampled by `vocflow sample-variants` from {config_path} "
              f"(seed {seed}).\n# Run it as a larger grid: snakemake --configfile "
              f"{config_path} {out}\n")
    write_text(out, header + yaml.safe_dump(fragment, sort_keys=False, default_flow_style=None,
                                            width=100))
    return fragment
