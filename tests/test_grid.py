"""The config's grid: per-cell settings from the shared train block, the task's and the
variant's overrides; grid names, variants and parameters checked early; the schema's train keys
are TrainSettings'."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vocflow.errors import ConfigError
from vocflow.grid import TRAIN_KEYS, TrainSettings, cell_settings, check_grid, train_block

REPO = Path(__file__).resolve().parents[1]


def base_config() -> dict:
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


def test_cell_settings_resolve_variants() -> None:
    config = base_config()
    config["variants"]["unet_wide"] = {"arch": "unet", "base_width": 32, "lr": 3e-4}
    s = cell_settings(config, "segmentation", "unet_wide", "ce_dice")
    assert s["arch"] == "unet" and s["model_params"] == {"base_width": 32} and s["lr"] == 3e-4
    assert s["loss_params"] == {"alpha": 0.5}
    assert cell_settings(config, "classification", "cnn", "bce")["monitor"] == "map"


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["classification"]["models"].append("resnet9000"), "unknown model 'resnet9000'"),
    (lambda c: c["segmentation"]["losses"].append("l2"), "unknown loss 'l2'"),
    (lambda c: c["segmentation"]["models"].append("random"), "reserved for the baseline"),
    # Variants and loss variants: every parameter, before any job starts.
    (lambda c: c["variants"]["cnn"].update(widthz=[8]),
     r"variants\.cnn\.widthz: unknown parameter of model 'cnn' \(did you mean 'widths'\?\)"),
    (lambda c: c["variants"]["cnn"].update(dropout="high"),
     r"variants\.cnn\.dropout: 'high' is not a number"),
    (lambda c: c["variants"]["cnn"].update(batch_norm=1), "1 is not true or false"),
    (lambda c: c["variants"]["cnn"].update(kernel_size=3.5), "3.5 is not an integer"),
    (lambda c: c["variants"]["unet"].update(arch="unet3d"),
     r"variants\.unet\.arch: unknown segmentation model 'unet3d'"),
    (lambda c: c["variants"].update(spare={"arch": "vgg"}),
     r"variants\.spare\.arch: unknown model"),
    (lambda c: c["variants"].update(spare={"arch": "cnn", "dense": "big"}),
     r"variants\.spare\.dense: 'big' is not an integer"),
    (lambda c: c["loss_params"]["ce_dice"].update(betaa=1),
     r"loss_params\.ce_dice\.betaa: unknown parameter of segmentation loss 'ce_dice'"),
    (lambda c: c["loss_params"]["ce_dice"].update(alpha="half"), "'half' is not a number"),
    (lambda c: (c["loss_params"].update(f3={"loss": "focall"}),
                c["segmentation"]["losses"].append("f3")),
     r"loss_params\.f3\.loss: unknown loss 'focall' for segmentation"),
    (lambda c: c["loss_params"].update(f3={"loss": "focall"}), r"loss_params\.f3: unknown loss"),
    (lambda c: c["loss_params"].update(f3={"loss": "focal", "gama": 2}),
     r"loss_params\.f3\.gama: unknown parameter of loss 'focal' \(did you mean 'gamma'\?\)"),
])
def test_check_grid_errors(edit, message: str) -> None:
    config = base_config()
    edit(config)
    with pytest.raises(ConfigError, match=message):
        check_grid(config)


def test_variants_may_override_recipe_keys() -> None:
    assert {"freeze_epochs", "lr_head", "image_size", "optimizer", "schedule"} <= TRAIN_KEYS
    assert not {"task", "seed", "model_params"} & TRAIN_KEYS




def test_task_train_block_overrides_the_shared_one() -> None:
    config = base_config()
    config["train"]["batch_size"] = 4
    config["segmentation"]["train"] = {"epochs": 2}
    s = cell_settings(config, "segmentation", "unet", "ce_dice")
    assert (s["batch_size"], s["epochs"]) == (4, 2)
    assert train_block(config, "classification")["epochs"] == config["classification"]["train"][
        "epochs"]


def test_schema_train_keys_are_the_settings_keys() -> None:
    """One source of truth: the schema's train block lists exactly TrainSettings' train keys,
    and the shipped shared block sets every one of them."""
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert set(schema["definitions"]["train_settings"]["properties"]) == TRAIN_KEYS
    assert set(base_config()["train"]) == TRAIN_KEYS
    TrainSettings(task="classification", model="m", arch="cnn", loss="bce",
                  **base_config()["train"])
