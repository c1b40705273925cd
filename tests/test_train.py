"""Training one cell: outputs and determinism, the two-phase transfer schedule, early stopping
with best-weight restore, image-size override, AMP set-up, loader workers, progress lines."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import train_tiny
from torch import nn

import vocflow.train as train
from vocflow.checkpoints import load_checkpoint
from vocflow.data.cache import load_cache
from vocflow.data.transforms import normalize_batch
from vocflow.errors import ConfigError
from vocflow.grid import TrainSettings
from vocflow.progress import BatchProgress

BASE = dict(task="classification", model="tiny", arch="cnn", loss="bce", epochs=3,
            batch_size=8, lr=1e-3, augment="none", model_params={"widths": [4, 8], "dense": 8})


class TinyTransfer(nn.Module):
    """A 'pretrained' conv-BN backbone and a linear head, like vocflow.models.transfer."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4),
                                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def use_tiny_transfer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train, "build_model", lambda task, arch, n, **kw: TinyTransfer(n))
    monkeypatch.setattr(train, "param_groups", lambda m: (list(m.backbone.parameters()),
                                                          list(m.head.parameters())))
    monkeypatch.setattr(train, "backbone_modules", lambda m: [m.backbone])


def run(tiny_data: dict, out: Path, callback: Any = None, **settings: Any) -> dict[str, Path]:
    paths = {k: out / f"{k}{ext}" for k, ext in
             (("checkpoint", ".pt"), ("metrics", ".csv"), ("oof", ".npz"))}
    s = TrainSettings(**{**BASE, **settings}).to_dict()
    train.train_cell(tiny_data["train"], tiny_data["folds"], 0, s, paths["checkpoint"],
                     paths["metrics"], paths["oof"], callback=callback)
    return paths


def test_two_phase_freezes_then_unfreezes(tiny_data: dict, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    use_tiny_transfer(monkeypatch)
    seen: dict[int, dict[str, Any]] = {}

    def spy(event: str, epoch: int, batch: int, model: nn.Module) -> None:
        if event == "batch_end":  # inside the training loop, after an optimiser step
            bn = model.backbone[1]
            seen.setdefault(epoch, {}).update(
                grad=[p.requires_grad for p in model.backbone.parameters()],
                head_grad=[p.requires_grad for p in model.head.parameters()],
                bn_training=bn.training, head_training=model.head.training,
                conv=model.backbone[0].weight.detach().clone(),
                running_mean=bn.running_mean.clone())

    torch.manual_seed(0)  # train_cell seeds 0 + fold 0 before building: same init
    initial = TinyTransfer(20)
    paths = run(tiny_data, tmp_path, spy, freeze_epochs=1, lr=1e-3, lr_head=5e-2, epochs=3,
                model_params={"pretrained": True})
    frozen, thawed = seen[1], seen[2]
    assert not any(frozen["grad"]) and all(frozen["head_grad"])
    assert frozen["bn_training"] is False and frozen["head_training"] is True
    assert torch.equal(frozen["conv"], initial.backbone[0].weight)  # nothing moved
    assert torch.equal(frozen["running_mean"], initial.backbone[1].running_mean)
    assert all(thawed["grad"]) and thawed["bn_training"] is True
    assert not torch.equal(thawed["conv"], frozen["conv"])
    assert not torch.equal(thawed["running_mean"], frozen["running_mean"])
    metrics = pd.read_csv(paths["metrics"])
    assert metrics["phase"].tolist() == [1, 2, 2]
    # rebuilding the checkpoint must not need the pretrained weights again
    meta = torch.load(paths["checkpoint"], weights_only=True)["meta"]
    assert meta["model_params"] == {} and meta["pretrained"] is True
    assert metrics["lr"].tolist()[:2] == pytest.approx([5e-2, 1e-3])


def test_from_scratch_models_skip_the_frozen_phase(tiny_data: dict, tmp_path: Path) -> None:
    paths = run(tiny_data, tmp_path, freeze_epochs=2, epochs=2)  # cnn: no backbone
    assert pd.read_csv(paths["metrics"])["phase"].tolist() == [2, 2]












def test_early_stopping_restores_best_weights(tiny_data: dict, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    script = iter([0.2, 0.6, 0.5, 0.4, 0.9, 0.9])  # best at epoch 2, then 2 stale epochs
    monkeypatch.setattr(train, "split_scores",
                        lambda *a: {"map": next(script), "f1": 0.0, "kaggle": 0.0})
    weights: dict[int, dict[str, torch.Tensor]] = {}

    def keep(event: str, epoch: int, batch: int, model: nn.Module) -> None:
        if event == "epoch_end":
            weights[epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    paths = run(tiny_data, tmp_path, keep, epochs=6, patience=2, lr=3e-3)
    metrics = pd.read_csv(paths["metrics"])
    assert metrics["epoch"].tolist() == [1, 2, 3, 4] and metrics["is_best"].tolist() == [
        0, 1, 0, 0]
    best = torch.load(paths["checkpoint"], weights_only=True)
    assert best["meta"]["epoch"] == 2
    assert all(torch.equal(best["state_dict"][k], v) for k, v in weights[2].items())
    assert not all(torch.equal(best["state_dict"][k], v) for k, v in weights[4].items())
    # the OOF probabilities are those of the restored (epoch 2) weights
    model = train.build_model("classification", "cnn", 20, widths=[4, 8], dense=8)
    model.load_state_dict(best["state_dict"])
    oof = np.load(paths["oof"])
    images = torch.from_numpy(np.asarray(load_cache(tiny_data["train"]).images[oof["index"]]))
    with torch.no_grad():
        probs = model.eval()(normalize_batch(images)).sigmoid().numpy()
    np.testing.assert_allclose(oof["probs"], probs, atol=1e-6)


def test_image_size_override(tiny_data: dict, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    sides: set[int] = set()
    build = train.build_model

    def recording(*args: Any, **kw: Any) -> nn.Module:
        model = build(*args, **kw)
        model.register_forward_pre_hook(lambda m, inp: sides.add(inp[0].shape[-1]))
        return model

    monkeypatch.setattr(train, "build_model", recording)
    paths = run(tiny_data, tmp_path, task="segmentation", arch="unet", loss="ce", epochs=1,
                model_params={"base_width": 4, "levels": 2}, image_size=48, augment="full")
    assert sides == {48}  # training (resized in the transform) and validation
    meta = torch.load(paths["checkpoint"], weights_only=True)["meta"]
    assert meta["input_size"] == 48 and meta["image_size"] == 32
    assert np.load(paths["oof"])["probs"].shape[-2:] == (32, 32)  # back at the cache side


def test_crop_size_trains_on_crops_and_validates_whole_images(
        tiny_data: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sides: list[tuple[bool, int]] = []
    build = train.build_model

    def recording(*args: Any, **kw: Any) -> nn.Module:
        model = build(*args, **kw)
        model.register_forward_pre_hook(lambda m, inp: sides.append((m.training,
                                                                     inp[0].shape[-1])))
        return model

    monkeypatch.setattr(train, "build_model", recording)
    paths = run(tiny_data, tmp_path, task="segmentation", arch="unet", loss="ce", epochs=1,
                model_params={"base_width": 4, "levels": 2}, image_size=48, crop_size=32)
    assert set(sides) == {(True, 32), (False, 48)}
    assert torch.load(paths["checkpoint"], weights_only=True)["meta"]["input_size"] == 48
    cache = load_cache(tiny_data["train"])
    s = TrainSettings(**{**BASE, "crop_size": 24})
    with pytest.raises(ConfigError, match="crop_size 24 is set for classification"):
        train.build_loaders(0, s, cache, (np.arange(4), np.arange(4, 6)), 32, 0, False)


def test_a_variant_side_trains_on_the_originals(tiny_data: dict) -> None:
    # At 48 px on the 32 px cache the loaders read the originals resized once to 48 px:
    # training images and masks at 48, validation images at 48 with the cache's 32 px masks.
    cache = load_cache(tiny_data["train"])
    s = TrainSettings(**{**BASE, "task": "segmentation", "arch": "unet", "loss": "ce",
                         "augment": "none", "image_size": 48})
    idx = (np.arange(6), np.arange(6, 10))
    _, train_loader, val_loader = train.build_loaders(0, s, cache, idx, 48, 0, False)
    images, masks = cache.resampled(48)
    np.testing.assert_array_equal(train_loader.dataset.images, images)
    np.testing.assert_array_equal(train_loader.dataset.masks, masks)
    x, y = next(iter(val_loader))
    assert x.shape[1:] == (48, 48, 3) and y.shape[1:] == (32, 32)
    np.testing.assert_array_equal(x.numpy(), images[6:10])


def test_cpu_runs_are_exact_with_loader_workers(tiny_data: dict, tmp_path: Path) -> None:
    s = TrainSettings(**{**BASE, "epochs": 2, "augment": "full"}).to_dict()
    frames = []
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        train.train_cell(tiny_data["train"], tiny_data["folds"], 0, s, out / "c.pt",
                         out / "m.csv", out / "o.npz", workers=workers)
        frames.append(pd.read_csv(out / "m.csv").drop(columns="seconds"))
    pd.testing.assert_frame_equal(frames[0], frames[1])


@pytest.mark.filterwarnings("ignore:torch.cuda.amp.GradScaler is enabled")
def test_amp_and_workers_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    s = TrainSettings(**BASE)
    cpu = train.amp_for(s, torch.device("cpu"))
    assert cpu.dtype is None and not cpu.scaler.is_enabled() and cpu.channels_last
    off_cpu = TrainSettings(**{**BASE, "channels_last": False})
    assert not train.amp_for(off_cpu, torch.device("cpu")).channels_last
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert train.amp_for(s, cuda).dtype == torch.bfloat16 and train.amp_for(s, cuda).channels_last
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert train.amp_for(s, cuda).dtype == torch.float16
    off = TrainSettings(**{**BASE, "amp": False, "channels_last": False})
    assert train.amp_for(off, cuda).dtype is None and not train.amp_for(off, cuda).channels_last
    assert train.loader_workers(torch.device("cpu"), 8, None) == 0
    assert train.loader_workers(cuda, 8, None) == 7 and train.loader_workers(cuda, 1, None) == 1
    assert train.loader_workers(cuda, 8, 3) == 3


def test_progress_is_plain_lines_without_a_terminal(caplog: pytest.LogCaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vocflow.progress.on_terminal", lambda: False)
    caplog.set_level(logging.INFO, logger="vocflow.progress")
    bar = BatchProgress(4, "epoch 1", interval_s=0.0)
    assert bar.bar is None
    for _ in range(4):
        bar.step(8, 0.5)
    bar.close()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("epoch 1: batch 1/4 loss 0.5000") and len(lines) == 3
    monkeypatch.setattr("vocflow.progress.on_terminal", lambda: True)
    tty = BatchProgress(4, "epoch 1")
    assert tty.bar is not None and tty.bar.total == 4
    tty.close()


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_train_cell_outputs_and_determinism(tiny_data: dict, task: str, tmp_path: Path) -> None:
    extra = {"loss": "ce_dice"} if task == "segmentation" else {}
    a, b = (train_tiny(tiny_data, task, tmp_path / d, epochs=2, **extra) for d in "ab")
    metrics = pd.read_csv(a["metrics"])
    assert list(metrics["epoch"]) == [1, 2] and metrics["is_best"].sum() == 1
    assert {"train_loss", "val_loss", "task", "model", "loss", "fold"} <= set(metrics.columns)
    pd.testing.assert_frame_equal(metrics.drop(columns="seconds"),
                                  pd.read_csv(b["metrics"]).drop(columns="seconds"))
    oof = np.load(a["oof"])
    assert len(oof["ids"]) == len(oof["probs"]) and np.array_equal(
        oof["probs"], np.load(b["oof"])["probs"])
    model, meta = load_checkpoint(a["checkpoint"], torch.device("cpu"))
    assert meta["task"] == task and meta["image_size"] == 32




@pytest.mark.parametrize(("weighting", "expected"), [
    # Three 2 x 2 masks: [1 1 / 1 1], [0 0 / 0 2], [0 0 / 2 2]; pixel counts n = (5, 4, 3),
    # f = n / 12; images holding each class m = (2, 1, 2). Weights scaled so Σ f w = 1.
    ("inverse", [4 / 5, 1.0, 4 / 3]),  # w ∝ 1 / n
    ("median", [24 / 25, 3 / 5, 8 / 5]),  # w ∝ m / n (frequency among images holding k)
])
def test_wce_weighting_reaches_the_loss_from_per_image_counts(weighting: str,
                                                               expected: list[float]) -> None:
    masks = np.array([[[1, 1], [1, 1]], [[0, 0], [0, 2]], [[0, 0], [2, 2]]], np.uint8)
    cache = SimpleNamespace(masks=masks, class_names=["a", "b"])
    s = TrainSettings(task="segmentation", model="m", arch="unet", loss="wce",
                      loss_params={"weighting": weighting})
    loss = train.make_loss(s, cache, np.arange(3))  # type: ignore[arg-type]
    np.testing.assert_allclose(loss.loss.weight.numpy(), expected, rtol=1e-6)


def test_refit_trains_every_image_for_the_folds_mean_best_epoch(tiny_data: dict,
                                                                tmp_path: Path) -> None:
    folds = [train_tiny(tiny_data, "segmentation", tmp_path / f"fold{k}", k, epochs=3)
             for k in (0, 1)]
    best = [int(pd.read_csv(f["metrics"]).query("is_best == 1")["epoch"].iloc[0]) for f in folds]
    s = TrainSettings(task="segmentation", model="unet", arch="unet", loss="ce", epochs=3,
                      batch_size=8, model_params={"base_width": 4, "levels": 2})
    out = tmp_path / "refit"
    train.refit_cell(tiny_data["train"], [f["metrics"] for f in folds], s.to_dict(), 0,
                     out / "best.pt", out / "metrics.csv")
    rows = pd.read_csv(out / "metrics.csv")
    assert len(rows) == max(1, round(sum(best) / 2))
    assert rows["is_best"].tolist() == [0] * (len(rows) - 1) + [1]  # the last epoch is kept
    assert (rows["fold"] == -1).all() and not any(c.startswith("val_m") for c in rows)
    assert {"train_miou", "train_dice", "train_kaggle"} <= set(rows.columns)
    assert rows["train_miou"].between(0, 1).all()
    model, meta = load_checkpoint(out / "best.pt", torch.device("cpu"))
    assert meta["epoch"] == len(rows)
    assert not (out / "oof.npz").exists()


def test_training_set_scores_sit_beside_the_validation_ones(tiny_data: dict,
                                                            tmp_path: Path) -> None:
    rows = pd.read_csv(run(tiny_data, tmp_path, epochs=2)["metrics"])
    for metric in ("map", "f1", "kaggle", "auc"):
        assert rows[f"train_{metric}"].notna().all() and f"val_{metric}" in rows


def test_roc_auc_can_pick_the_best_epoch(tiny_data: dict, tmp_path: Path) -> None:
    rows = pd.read_csv(run(tiny_data, tmp_path, epochs=3, monitor="auc")["metrics"])
    assert rows.loc[rows["is_best"] == 1, "epoch"].item() == rows.loc[
        rows["val_auc"].idxmax(), "epoch"]
    meta = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["meta"]
    assert meta["monitor"] == "auc" and meta["score"] == pytest.approx(rows["val_auc"].max())
