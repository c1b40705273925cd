"""Random search as variants: distributions, reproducibility, the written config fragment (merged
like Snakemake merges --configfile files), schema checks and the CLI."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import yaml

from vocflow.cli import main
from vocflow.errors import ConfigError
from vocflow.grid import cell_settings, check_grid
from vocflow.random_search import sample_search, sample_space, sample_value, write_search

REPO = Path(__file__).resolve().parents[1]
SPACE = {
    "task": "classification",
    "arch": "cnn",
    "n": 6,
    "params": {
        "widths": {"choice": [[8, 16], [16, 32, 64]]},
        "kernel_size": {"choice": [3, 5]},
        "batch_norm": {"choice": [True, False]},
        "dense": {"int": [16, 18]},
        "dropout": {"uniform": [0.1, 0.4]},
        "lr": {"loguniform": [1e-4, 1e-2]},
        "epochs": 3,
    },
}


def default_config() -> dict[str, Any]:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Snakemake's --configfile merge: nested mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def test_distributions_stay_in_range() -> None:
    rng = np.random.default_rng(0)
    ints = {sample_value({"int": [2, 4]}, rng, "x") for _ in range(200)}
    assert ints == {2, 3, 4}  # both ends included
    logs = [sample_value({"loguniform": [1e-4, 1e-2]}, rng, "x") for _ in range(200)]
    assert all(1e-4 <= v <= 1e-2 for v in logs)
    assert min(logs) < 1e-3 < max(logs)  # spread over the decades, not just near the top
    assert all(0.1 <= sample_value({"uniform": [0.1, 0.4]}, rng, "x") <= 0.4 for _ in range(50))
    assert sample_value({"choice": [[1, 2]]}, rng, "x") == [1, 2]
    assert sample_value(7, rng, "x") == 7


@pytest.mark.parametrize("spec", [{"uniform": [1.0]}, {"int": [5, 2]}, {"choice": []},
                                  {"loguniform": [0, 1]}, {"normal": [0, 1]},
                                  {"choice": [1], "int": [1, 2]}])
def test_bad_distributions_are_config_errors(spec: dict) -> None:
    with pytest.raises(ConfigError, match="search_space.s.params.k"):
        sample_value(spec, np.random.default_rng(0), "search_space.s.params.k")


def test_sampling_is_reproducible_and_named() -> None:
    first = sample_space("cnn_rs", SPACE, seed=1)
    assert list(first) == [f"cnn_rs{i:03d}" for i in range(6)]
    assert first == sample_space("cnn_rs", SPACE, seed=1)
    assert first != sample_space("cnn_rs", SPACE, seed=2)
    assert all(v["arch"] == "cnn" and v["epochs"] == 3 for v in first.values())
    assert len({str(v) for v in first.values()}) == 6
    assert len(sample_space("cnn_rs", SPACE, seed=1, n=2)) == 2


def test_fragment_merges_into_a_valid_larger_grid() -> None:
    config = default_config()
    config["search_space"] = {"cnn_rs": SPACE}
    fragment = sample_search(config, seed=0)
    merged = merge(config, fragment)
    assert merged["classification"]["models"] == config["classification"]["models"] + [
        f"cnn_rs{i:03d}" for i in range(6)]
    assert merged["segmentation"] == config["segmentation"]  # untouched task
    assert set(config["variants"]) < set(merged["variants"])  # own variants kept
    check_grid(merged)
    settings = cell_settings(merged, "classification", "cnn_rs000", "bce")
    drawn = fragment["variants"]["cnn_rs000"]
    assert settings["lr"] == drawn["lr"] and settings["epochs"] == 3
    assert settings["model_params"]["widths"] == drawn["widths"]
    assert "lr" not in settings["model_params"]


def test_adding_a_space_keeps_the_draws_of_the_others() -> None:
    config = default_config()
    config["search_space"] = {"cnn_rs": SPACE}
    alone = sample_search(config, seed=0)["variants"]
    config["search_space"]["unet_rs"] = {"task": "segmentation", "arch": "unet", "n": 2,
                                         "params": {"base_width": {"choice": [8, 16]}}}
    both = sample_search(config, seed=0)
    assert {k: v for k, v in both["variants"].items() if k.startswith("cnn_rs")} == alone
    assert both["segmentation"]["models"][-2:] == ["unet_rs000", "unet_rs001"]


@pytest.mark.parametrize(("change", "match"), [
    ({"params": {"widht": {"choice": [[8]]}}}, "cnn_rs000: bad parameters"),
    ({"arch": "resnet9000"}, "unknown classification model 'resnet9000'"),
    ({"task": "detection"}, "task must be one of"),
])
def test_bad_spaces_fail_before_any_job(change: dict, match: str) -> None:
    config = default_config()
    config["search_space"] = {"cnn_rs": {**SPACE, **change}}
    with pytest.raises(ConfigError, match=match):
        sample_search(config)


def test_sampled_names_must_not_clash() -> None:
    config = default_config()
    config["search_space"] = {"cnn_rs": SPACE}
    config["variants"]["cnn_rs000"] = {"arch": "cnn"}
    with pytest.raises(ConfigError, match="already exist"):
        sample_search(config)
    with pytest.raises(ConfigError, match="valid: \\['cnn_rs'\\]"):
        sample_search({**config, "variants": {}}, spaces=["nope"])


def test_schema_checks_search_space_specs() -> None:
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    config = default_config()
    jsonschema.validate(config, schema)  # the shipped example space is valid
    config["search_space"]["cnn_rs"]["params"]["dropout"] = {"uniform": [0.1]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, schema)
    config["search_space"]["cnn_rs"]["params"]["dropout"] = {"gauss": [0, 1]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, schema)


def test_cli_writes_a_config_fragment(tmp_path: Path) -> None:
    out = tmp_path / "search.yaml"
    config = REPO / "config" / "config.yaml"
    assert main(["sample-variants", "--config", str(config), "--out", str(out), "--n", "3",
                 "--seed", "5"]) == 0
    text = out.read_text()
    assert text.startswith("# Random search") and "snakemake --configfile" in text
    fragment = yaml.safe_load(text)
    assert fragment == write_search(config, tmp_path / "again.yaml", seed=5, n=3)
    merged = merge(default_config(), fragment)
    check_grid(merged)
    assert len(merged["classification"]["models"]) == len(
        default_config()["classification"]["models"]) + 3
