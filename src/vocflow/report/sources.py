"""Where the report reads from, and tolerant readers: a file that is absent reads as None.

The workflow passes every path (the package holds none); stages that have not run (or are not
configured) simply have no file yet, and their sections say "not run".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from vocflow.config import from_fields
from vocflow.errors import ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportPaths:
    """Inputs of the report; any may be None/empty (its section then renders "not run")."""

    leaderboard: str | None = None
    metrics: list[str] = field(default_factory=list)  # every cell's per-epoch metrics.csv
    selections: dict[str, str] = field(default_factory=dict)  # task -> selected.yaml
    train_cache: str | None = None  # cache directory (vocflow.data.cache)
    test_cache: str | None = None
    folds: str | None = None
    score: str | None = None  # score.yaml of the test submission
    benchmarks: str | None = None  # directory of Snakemake benchmark .tsv files
    rulegraph: str | None = None  # DOT text of `snakemake --rulegraph`
    dag: str | None = None  # DOT text of `snakemake --dag` (one node per job)
    thresholds: dict[str, str] = field(default_factory=dict)  # task -> thresholds.yaml
    threshold_curves: dict[str, str] = field(default_factory=dict)  # task -> csv
    crf: str | None = None  # tuned CRF parameters (yaml)
    crf_panels: str | None = None  # directory of CRF before/after PNGs
    ablation: str | None = None  # csv: task, step, kaggle, miou, notes
    class_report: str | None = None  # csv: per-class precision/recall/F1/ROC-AUC (classification)
    attacks_summary: str | None = None  # csv, one row per task × attack × ε
    attacks_dir: str | None = None  # holds *success_vs_eps*.png and panels/*.png
    repo: str | None = None  # the workflow's directory, for the git commit

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportPaths:
        return from_fields(cls, data, "report inputs")


@dataclass(frozen=True)
class ReportOptions:
    """The ``report:`` section of the config."""

    examples: int = 3  # best and worst predictions shown per task
    dpi: int = 80
    max_panels: int = 8  # external example panels embedded per folder (CRF, attacks)
    gpu_stages: tuple[str, ...] = ("train", "predict", "attack", "attacks")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ReportOptions:
        data = dict(data or {})
        data.pop("rulegraph", None)  # read by the workflow only
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown report options {unknown} in config.yaml 'report:'; "
                              f"valid: {sorted(known)}")
        if "gpu_stages" in data:
            data["gpu_stages"] = tuple(data["gpu_stages"])
        return cls(**data)


def existing(path: str | Path | None) -> Path | None:
    """``path`` as a Path when it names an existing file or directory, else None."""
    return Path(path) if path and Path(path).exists() else None


def read_csv(path: str | Path | None, **options: Any) -> pd.DataFrame | None:
    """The csv at ``path`` (pandas.read_csv ``options``), None when absent."""
    found = existing(path)
    if found is None:
        return None
    try:
        return pd.read_csv(found, **options)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {found}: {' '.join(str(exc).split())}; re-run the rule "
                        "that writes it") from exc


def read_yaml(path: str | Path | None) -> Any:
    found = existing(path)
    if found is None:
        return None
    try:
        return yaml.safe_load(found.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"cannot read {found}: {' '.join(str(exc).split())}; re-run the rule "
                        "that writes it") from exc


def pngs(folder: str | Path | None, pattern: str = "*.png") -> list[Path]:
    """PNG files under ``folder`` matching ``pattern`` (recursively), sorted; [] if absent."""
    found = existing(folder)
    return sorted(found.rglob(pattern)) if found is not None and found.is_dir() else []


def stage_enabled(config: Mapping[str, Any], section: str) -> bool:
    """A config section is on unless it is false/null or says ``enabled: false``; absent = on
    (whether its files can be made is then up to the workflow's rules)."""
    value = config.get(section, {})
    return bool(value.get("enabled", True)) if isinstance(value, Mapping) else bool(value)


def optional_inputs(config: Mapping[str, Any], files: Mapping[str, list[str]],
                    rules: Iterable[Any]) -> dict[str, list[str]]:
    """Per optional stage, the files the report waits for: those of an enabled stage that some
    rule writes (``rule.is_producer(path)``, duck-typed so this module needs no Snakemake)."""
    rules = list(rules)
    return {section: [f for f in paths if any(r.is_producer(f) for r in rules)]
            if stage_enabled(config, section) else [] for section, paths in files.items()}
