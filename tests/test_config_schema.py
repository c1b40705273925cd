"""The config schema: the shipped config passes; unknown keys and wrong types fail."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

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
])
def test_bad_configs_are_rejected(edit) -> None:
    config = copy.deepcopy(CONFIG)
    edit(config)
    with pytest.raises(WorkflowError):
        validate(config, SCHEMA)
