"""The config schema: the shipped config passes; unknown keys and wrong types fail, with one
line per violation (vocflow.config.check_config)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from vocflow.config import check_config
from vocflow.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())


def test_shipped_config_is_valid() -> None:
    validate(copy.deepcopy(CONFIG), SCHEMA)


@pytest.mark.parametrize("edit", [
    lambda c: c.update(fold=3),                                   # unknown top-level key
    lambda c: c["data"].update(imagesize=64),                      # unknown nested key
    lambda c: c["data"].update(image_size="64"),                   # wrong type
    lambda c: c["data"].update(format="coco"),                     # not an allowed value
    lambda c: c["classification"]["train"].update(epochs=0),       # out of range
    lambda c: c["segmentation"].update(selection_metric="map"),    # wrong task metric
    lambda c: c["classification"].update(models="cnn"),            # list expected
    lambda c: c["classification"]["models"].append("bad name"),    # not a safe path part
    lambda c: c["variants"]["cnn"].update(lr="fast"),              # a variant's train setting
    lambda c: c["data"].update(min_side=0),                        # out of range
])
def test_bad_configs_are_rejected(edit) -> None:
    config = copy.deepcopy(CONFIG)
    edit(config)
    with pytest.raises(WorkflowError):
        validate(copy.deepcopy(config), SCHEMA)
    with pytest.raises(ConfigError):
        check_config(config, SCHEMA)


def test_each_violation_is_one_line_naming_its_key() -> None:
    config = copy.deepcopy(CONFIG)
    config["data"].update(image_sise=64, image_size="64")
    config["variants"]["unet"]["epochs"] = "ten"
    config["train"]["optimizer"] = "adam"
    del config["data"]["root"]
    with pytest.raises(ConfigError) as info:
        check_config(config, SCHEMA)
    lines = str(info.value).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "config data", "config data.image_sise", "config data.image_size",
        "config train.optimizer", "config variants.unet.epochs"]
    assert "missing key 'root'" in lines[0] and "unknown key; valid: class_names" in lines[1]
    assert "'64' is not an integer" in lines[2] and "'ten' is not an integer" in lines[4]
    assert "'adam' is not one of adamw, sgd" in lines[3]
    assert all(len(line) < 250 and line.endswith("that sets it)") for line in lines)


def test_class_names_are_optional_except_for_voc() -> None:
    config = copy.deepcopy(CONFIG)
    del config["data"]["class_names"]
    check_config(config, SCHEMA)
    config["data"]["format"] = "voc"
    with pytest.raises(ConfigError, match=r"config data: missing key 'class_names'"):
        check_config(config, SCHEMA)
