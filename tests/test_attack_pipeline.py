"""An attack job per task × method on tiny trained models, then the summary table and plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from helpers import train_tiny, write_selection

from vocflow.attack_config import AttackSettings
from vocflow.attacks import ATTACKS, attack_settings
from vocflow.attacks.evaluate import scaled_crf_params
from vocflow.attacks.run import attack_data, run_attack, summarize
from vocflow.crf import CrfParams
from vocflow.data.cache import load_cache
from vocflow.data.folds import read_folds
from vocflow.data.synthetic import VOC_CLASSES
from vocflow.errors import DataError

MODELS = {
    "classification": dict(arch="cnn", loss="bce", model_params={"widths": [4, 8], "dense": 8}),
    "segmentation": dict(arch="unet", loss="ce", model_params={"base_width": 4, "levels": 2}),
}
CONFIG = {
    "seed": 0,
    "data": {"format": "synthetic", "class_names": list(VOC_CLASSES)},
    "attacks": {
        "methods": ATTACKS.names(), "targeted": [False, True], "epsilons": [2, 8],
        "split": "validation", "n_images": 4, "batch_size": 4,
        "pgd": {"steps": 2, "step_size": 0.5, "random_start": True},
        "generator": {"train_images": 8, "steps": 2, "batch_size": 4},
        "targets": {"classification": "add:person", "segmentation": "paint:largest:person"},
        "crf": True, "panels": 1,
    },
}


# Tiny tensors: one intra-op thread (conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def selections(tiny_data: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """selected.yaml per task, naming a one-epoch fold-0 checkpoint."""
    out = tmp_path_factory.mktemp("selected")
    paths = {}
    for task, model in MODELS.items():
        fold0 = train_tiny(tiny_data, task, out / task / "fold0", **model)
        paths[task] = write_selection(out / task / "selected.yaml", task, [fold0],
                                      model["arch"], model["loss"])
    return paths


def test_attack_jobs_and_summary(tiny_data: dict, selections: dict[str, Path],
                                 tmp_path: Path) -> None:
    crf_yaml = tmp_path / "crf.yaml"  # as vocflow.crf.crf_tune writes it
    crf_yaml.write_text(yaml.safe_dump({"keep": False, "params": {"sxy": 40.0, "srgb": 13.0}}))
    tables = []
    for task in MODELS:
        for method in ATTACKS.names():
            table = tmp_path / task / f"{method}.csv"
            panel = tmp_path / "panels" / f"{task}_{method}.png"
            run_attack(tiny_data["train"], tiny_data["test"], tiny_data["folds"],
                       selections[task], attack_settings(CONFIG, task, method), table, panel,
                       crf_yaml=crf_yaml if task == "segmentation" else None)
            assert panel.stat().st_size > 0
            tables.append(table)
    summary, plot = tmp_path / "summary.csv", tmp_path / "success_vs_eps.png"
    summarize(tables, summary, plot)
    assert plot.stat().st_size > 0
    frame = pd.read_csv(summary)
    n = len(ATTACKS.names()) * 2 * 2  # methods × modes × ε
    assert (frame["task"] == "classification").sum() == n
    assert (frame["task"] == "segmentation").sum() == 2 * n  # before and after CRF
    assert set(frame.loc[frame["task"] == "segmentation", "crf"]) == {False, True}
    required = {"task", "attack", "targeted", "epsilon", "success_rate", "metric_clean",
                "metric_adv", "metric_drop", "linf", "l2", "psnr", "ssim",
                "seconds_per_image", "crf"}
    assert required <= set(frame.columns)
    assert (frame["linf"] <= frame["bound"] + 1e-3)[frame["norm"] == "linf"].all()
    assert (frame["l2"] <= frame["bound"] * (1 + 1e-5))[frame["norm"] == "l2"].all()
    assert frame["success_rate"].between(0, 1).all() and (frame["n_images"] == 4).all()
    assert np.isfinite(frame["metric_clean"]).all()  # the validation split is labelled
    assert (frame.loc[frame["attack"].isin(["generator", "universal"]), "train_seconds"] > 0).all()


def test_crf_params_scale_to_the_cache_size() -> None:
    scaled = scaled_crf_params(CrfParams(sxy=80.0, gaussian_sxy=3.0), 32, 64, 256)
    assert scaled.sxy == pytest.approx(80.0 * 32 / 128)  # √(64·256) = 128
    assert scaled.gaussian_sxy == pytest.approx(3.0 / 4) and scaled.srgb == 13.0


def test_a_variant_is_attacked_at_its_own_side_from_the_originals(
        tiny_data: dict, tmp_path: Path) -> None:
    # Trained at 48 px on the 32 px cache: the attacked images, their masks and the
    # generators' training images are the originals resized to 48 px, as in prediction.
    fold0 = train_tiny(tiny_data, "segmentation", tmp_path / "fold0", **MODELS["segmentation"],
                       image_size=48)
    meta = torch.load(fold0["checkpoint"], weights_only=True)["meta"]
    s = AttackSettings.from_dict(attack_settings(CONFIG, "segmentation", "generator"))
    data = attack_data(s, tiny_data["train"], tiny_data["test"], tiny_data["folds"], 0, 8, meta)
    train = load_cache(tiny_data["train"])
    idx = np.flatnonzero(read_folds(tiny_data["folds"], train.ids) == 0)[:4]
    images, masks = train.resampled(48, idx)
    assert data.x.shape == (4, 3, 48, 48) and data.train_x.shape == (8, 3, 48, 48)
    np.testing.assert_array_equal(data.x.permute(0, 2, 3, 1).numpy(), images)
    np.testing.assert_array_equal(data.truth, masks)
    table = tmp_path / "pgd.csv"
    write_selection(tmp_path / "selected.yaml", "segmentation", [fold0], "unet", "ce")
    run_attack(tiny_data["train"], tiny_data["test"], tiny_data["folds"],
               tmp_path / "selected.yaml", attack_settings(CONFIG, "segmentation", "pgd"), table,
               tmp_path / "pgd.png")
    assert np.isfinite(pd.read_csv(table)["metric_clean"]).all()
    with pytest.raises(DataError, match="trained on a 64 px cache"):
        attack_data(s, tiny_data["train"], tiny_data["test"], tiny_data["folds"], 0, 0,
                    {**meta, "image_size": 64})
