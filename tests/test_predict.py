"""Prediction and the post-processing chain on tiny trained cells, as the workflow runs it
(without Snakemake): thresholds -> CRF search/tune -> test probabilities -> test shards ->
gather, and the ablation."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from helpers import TINY_MODELS, train_tiny, write_selection
from PIL import Image

from vocflow import checkpoints, cli
from vocflow.ablation import STEPS, ablation_shard, ensemble_row, refit_row, write_ablation
from vocflow.artifacts import TASKS, Selection, read_masks
from vocflow.checkpoints import load_checkpoint
from vocflow.crf_search import crf_search_shard, crf_tune
from vocflow.data.cache import load_cache
from vocflow.data.transforms import normalize
from vocflow.errors import DataError
from vocflow.grid import TrainSettings
from vocflow.predict import (
    gather_test,
    post_test_shard,
    predict_oof_tta,
    predict_probs,
    stored_probs,
)
from vocflow.submission import score_oof
from vocflow.thresholds import tune_thresholds
from vocflow.train import refit_cell

GRIDS = {"classification": [0.0, 1.0, 101], "segmentation": [0.0, 0.99, 100]}
SEARCH = {"sxy": [30], "srgb": [10, 20], "compat": [5], "iterations": [3]}


@pytest.fixture(scope="module")
def run(tiny_data: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two folds per task trained for one epoch, then every post-processing step, 2 shards."""
    torch.set_num_threads(1)
    r = tmp_path_factory.mktemp("post")
    sel, thr, probs, tta = {}, {}, {}, {}
    for task in TASKS:
        folds = [train_tiny(tiny_data, task, r / task / f"fold{k}", k) for k in (0, 1)]
        sel[task] = write_selection(r / task / "selected.yaml", task, folds,
                                    TINY_MODELS[task]["arch"], TINY_MODELS[task]["loss"])
        thr[task] = r / task / "thresholds.yaml"
        tune_thresholds(task, sel[task], tiny_data["train"], GRIDS[task], thr[task],
                        r / task / "curves.csv")
        probs[task] = r / task / "test_probs.npz"
        predict_probs(tiny_data["test"], sel[task], probs[task], tta=True, per_fold=True)
        tta[task] = r / task / "oof_tta.npz"
        predict_oof_tta(tiny_data["train"], sel[task], tta[task])
    search = [r / f"search{s}.csv" for s in (0, 1)]
    for s, out in enumerate(search):
        crf_search_shard(sel["segmentation"], tiny_data["train"], thr["segmentation"], SEARCH, 6,
                         0, 2, s, out)
    crf_tune(search, SEARCH, -1.0, r / "crf.yaml")  # min_gain -1: CRF kept, so it is exercised
    paths = {"sel": sel, "thr": thr, "probs": probs, "tta": tta, "crf": r / "crf.yaml", "root": r,
             "test_cache": tiny_data["test"]}
    paths["test"] = run_test_shards(tiny_data, paths, 2, r / "two")
    shards = []
    for s in (0, 1):
        shards.append(r / f"ablation{s}.npz")
        ablation_shard(tiny_data["train"], sel, tta, thr, r / "crf.yaml", "none", True, 2, s,
                       shards[-1])
    write_ablation(shards, tiny_data["train"], r / "crf.yaml", paths["test"]["summary"], True,
                   r / "ablation.csv", r / "oof_submission.csv")
    score_oof(r / "oof_submission.csv", tiny_data["train"], r / "oof_score.yaml")
    return paths


def run_test_shards(tiny_data: dict, paths: dict, shards: int, out: Path,
                    reconcile: str = "none") -> dict[str, Path]:
    files = {"classification": out / "cls.npz", "segmentation": out / "seg.npz",
             "summary": out / "test_ensemble.yaml"}
    parts = [out / f"shard{s}.npz" for s in range(shards)]
    for s, part in enumerate(parts):
        post_test_shard(tiny_data["test"], paths["probs"], paths["thr"], paths["crf"], reconcile,
                        shards, s, part)
    gather_test(parts, tiny_data["test"], paths["probs"]["classification"],
                files["classification"], files["segmentation"], files["summary"])
    return files


def test_ablation_table_has_every_row(run: dict) -> None:
    table = pd.read_csv(run["root"] / "ablation.csv")
    assert list(table.columns[:4]) == ["task", "step", "kaggle", "miou"]
    assert list(zip(table["task"], table["step"], strict=True)) == [
        (t, s) for t in TASKS for s in STEPS]
    scored = table[table["step"] != "+refit"]  # no refit in this run: its row is n/a
    assert scored["kaggle"].between(0, 1).all() and table["notes"].str.len().gt(0).all()
    assert table[table["task"] == "classification"]["miou"].isna().all()
    assert scored[scored["task"] == "segmentation"]["miou"].between(0, 1).all()
    ens = table[table["step"] == "+ensemble"]
    assert (ens["eval_set"] == "test").all() and ens["notes"].str.contains("leaky").all()
    assert (table[table["eval_set"] == "oof"]["images"] == 40).all()
    refit = table[table["step"] == "+refit"]
    assert refit["kaggle"].isna().all() and refit["notes"].str.contains("refit is false").all()


def test_oof_sanity_scores_the_final_pipeline_through_rle(run: dict) -> None:
    sanity = yaml.safe_load((run["root"] / "oof_score.yaml").read_text())["oof_sanity"]
    table = pd.read_csv(run["root"] / "ablation.csv").set_index(["task", "step"])
    assert sanity["rows"] == 80
    for task in TASKS:  # tta on, reconcile none: the final OOF pipeline is the +tta step
        assert sanity[task] == pytest.approx(table.loc[(task, "+tta"), "kaggle"])


def test_sharded_test_predictions_equal_unsharded(tiny_data: dict, run: dict,
                                                  tmp_path: Path) -> None:
    one = run_test_shards(tiny_data, run, 1, tmp_path)
    two = run["test"]
    for task in TASKS:
        a, b = np.load(one[task]), np.load(two[task])
        assert a.files == b.files
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    assert one["summary"].read_text() == two["summary"].read_text()
    masks = read_masks(np.load(two["segmentation"]))
    assert len(masks) == 8 and all(m.max() <= 20 for m in masks)


def test_reconcile_mask_takes_the_classes_in_the_mask(tiny_data: dict, run: dict,
                                                      tmp_path: Path) -> None:
    files = run_test_shards(tiny_data, run, 2, tmp_path, reconcile="mask")
    labels = np.load(files["classification"])["labels"]
    for row, mask in zip(labels, read_masks(np.load(files["segmentation"])), strict=True):
        present = {int(v) for v in np.unique(mask) if 1 <= v <= 20}
        assert set((np.flatnonzero(row) + 1).tolist()) == present


def test_test_probabilities_and_fold_references(run: dict) -> None:
    seg = np.load(run["probs"]["segmentation"])
    assert seg["probs"].dtype == np.uint8 and seg["probs"].shape == (8, 21, 32, 32)
    assert seg["fold_probs"].shape == (2, 8, 21, 32, 32) and int(seg["scale"]) == 255
    summary = yaml.safe_load(run["test"]["summary"].read_text())
    assert summary["labelled"] and len(summary["folds"]) == 2


@pytest.mark.parametrize("task", TASKS)
def test_oof_tta_uses_each_folds_own_model(tiny_data: dict, run: dict, task: str) -> None:
    selection = Selection.read(run["sel"][task])
    oof = selection.load_oof()
    tta = np.load(run["tta"][task])
    np.testing.assert_array_equal(tta["index"], oof["index"])
    assert tta["probs"].shape == oof["probs"].shape and tta["probs"].dtype == oof["probs"].dtype
    # Without flips, fold k's model on fold k's images gives back the stored OOF (to one quantum).
    cache = load_cache(tiny_data["train"])
    for k, ckpt in enumerate(selection.checkpoints):
        model, _ = load_checkpoint(ckpt, torch.device("cpu"))
        rows = oof["index"][oof["fold"] == k]
        again = stored_probs([model], cache.images[rows], task, 8, False, torch.device("cpu"))
        diff = np.abs(again.astype(np.float64) - oof["probs"][oof["fold"] == k])
        assert diff.max() <= (1 if task == "segmentation" else 1e-5)


def test_missing_checkpoint_names_the_cell(tiny_data: dict, run: dict, tmp_path: Path) -> None:
    selection = yaml.safe_load(run["sel"]["segmentation"].read_text())
    selection["checkpoints"][1] = str(tmp_path / "gone.pt")
    (tmp_path / "sel.yaml").write_text(yaml.safe_dump(selection))
    with pytest.raises(DataError, match="segmentation/unet/ce has no checkpoint"):
        predict_probs(tiny_data["test"], tmp_path / "sel.yaml", tmp_path / "p.npz")
    with pytest.raises(DataError, match="segmentation/unet/ce has no checkpoint"):
        predict_oof_tta(tiny_data["train"], tmp_path / "sel.yaml", tmp_path / "t.npz")


def test_a_variant_is_predicted_at_its_own_image_size(tiny_data: dict, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Trained at 48 px on the 32 px cache: test prediction and OOF-TTA feed it the ORIGINALS
    # resized to 48 px, as training did (not the cache enlarged), and keep its probabilities
    # at 48 px: post-processing upsamples them to each original size from any side.
    fold = train_tiny(tiny_data, "segmentation", tmp_path / "fold0", 0, image_size=48)
    sel = write_selection(tmp_path / "selected.yaml", "segmentation", [fold])
    inputs: list[torch.Tensor] = []
    build = checkpoints.build_model

    def recording(*args: object, **kw: object) -> torch.nn.Module:
        model = build(*args, **kw)
        model.register_forward_pre_hook(lambda m, inp: inputs.append(inp[0]))
        return model

    monkeypatch.setattr(checkpoints, "build_model", recording)
    predict_probs(tiny_data["test"], sel, tmp_path / "p.npz", tta=False)
    assert [x.shape[-1] for x in inputs] == [48]
    originals = load_cache(tiny_data["test"]).resampled(48, masks=False)[0]
    torch.testing.assert_close(inputs[0], torch.from_numpy(normalize(originals[:8])))
    predict_oof_tta(tiny_data["train"], sel, tmp_path / "t.npz")
    assert {x.shape[-1] for x in inputs} == {48}
    assert np.load(tmp_path / "p.npz")["probs"].shape == (8, 21, 48, 48)
    assert np.load(tmp_path / "t.npz")["probs"].shape[-2:] == (48, 48)


def test_refit_models_predict_alone_or_with_the_folds(tiny_data: dict, run: dict,
                                                      tmp_path: Path) -> None:
    task = "segmentation"
    selection = Selection.read(run["sel"][task])
    refit = tmp_path / "refit"
    metrics = [Path(p).with_name("metrics.csv") for p in selection.checkpoints]
    settings = TrainSettings(task=task, model="unet", epochs=1, batch_size=8,
                             **TINY_MODELS[task]).to_dict()
    refit_cell(tiny_data["train"], metrics, settings, 0, refit / "best.pt", refit / "m.csv")
    device = torch.device("cpu")
    cache = load_cache(tiny_data["test"])
    folds = [load_checkpoint(p, device)[0] for p in selection.checkpoints]
    alone = load_checkpoint(refit / "best.pt", device)[0]
    for with_folds, members in ((False, [alone]), (True, [*folds, alone])):
        out = tmp_path / f"probs{with_folds}.npz"
        predict_probs(tiny_data["test"], run["sel"][task], out, per_fold=True,
                      refit_checkpoints=[refit / "best.pt"], with_folds=with_folds)
        npz = np.load(out)
        expected = stored_probs(members, cache.images, task, 16, False, device)
        assert np.abs(npz["probs"].astype(int) - expected).max() <= 1
        assert npz["refit_probs"].shape == npz["folds_probs"].shape == npz["probs"].shape
    summary = run_test_shards(tiny_data, {**run, "probs": {**run["probs"], task: out}}, 2,
                              tmp_path / "shards")["summary"]
    test = yaml.safe_load(summary.read_text())
    row = refit_row(task, test, "with_folds")
    assert row["miou"] == test["ensemble"][task]["miou"] and "refits alone" in row["notes"]
    assert ensemble_row(task, test)["miou"] == test["fold_ensemble"][task]["miou"]


def test_vocflow_predict_writes_masks_at_each_images_size(run: dict, tmp_path: Path) -> None:
    # A finished study's files where `vocflow predict` reads them (the run fixture's models,
    # thresholds and CRF decision), then three JPEGs of different sizes, a PNG and an .npy.
    results = tmp_path / "study" / "results"
    for task in TASKS:
        (results / task).mkdir(parents=True)
        predict_probs(run["test_cache"], run["sel"][task], tmp_path / f"{task}.npz", tta=True,
                      predictor_yaml=results / task / "predictor.yaml")
        shutil.copy(run["thr"][task], results / task / "thresholds.yaml")
    shutil.copy(run["crf"], results / "segmentation" / "crf.yaml")
    rng = np.random.default_rng(0)
    sizes = {"a.jpg": (50, 70), "b.jpg": (33, 90), "c.jpeg": (120, 41), "d.png": (64, 64)}
    inputs = []
    for name, (h, w) in sizes.items():
        inputs.append(tmp_path / name)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(inputs[-1])
    inputs.append(tmp_path / "e.npy")
    np.save(inputs[-1], rng.integers(0, 256, (29, 31, 3), dtype=np.uint8))
    out = tmp_path / "out"
    assert cli.main(["predict", *map(str, inputs), "--out", str(out),
                     "--results", str(results)]) == 0
    for name, (h, w) in [*sizes.items(), ("e.npy", (29, 31))]:
        stem = Path(name).stem
        with Image.open(out / "masks" / f"{stem}.png") as mask:
            assert mask.mode == "P" and mask.size == (w, h)
            assert np.asarray(mask).max() <= 20
        with Image.open(out / "overlays" / f"{stem}.png") as overlay:
            assert overlay.size == (w, h)
    labels = pd.read_csv(out / "labels.csv")
    assert len(labels) == 5 and {"p_aeroplane", "aeroplane"} <= set(labels.columns)
    assert labels.filter(like="p_").stack().between(0, 1).all()
    assert cli.main(["predict", str(tmp_path / "nothing.gif"), "--out", str(out),
                     "--results", str(results)]) == 1  # one line, no traceback
