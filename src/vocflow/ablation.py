"""The ablation table: raw -> +thresholds -> +CRF -> +TTA -> +ensemble -> +refit, per task.

The first four steps are measured on the selected cells' out-of-fold (OOF) predictions of every
training image, at original size, with the Kaggle metric (mean per-row Dice) and mIoU; each
step adds to the previous one, following the decisions the pipeline really takes (a CRF that the
search dropped is measured in its own row but not carried into +TTA). "+ensemble" cannot be
measured on OOF: each OOF image has exactly one out-of-fold model, and averaging all folds'
models would include models trained on that image. It is measured on the labelled test split
instead (when labels exist), beside the single fold models on the same images, and so is
"+refit" (``predict.refit``): the refit models, alone or with the fold models, as the submission
uses them, beside the fold ensemble.

Shards split the OOF images round-robin (``vocflow.postprocess.shard_positions``); each writes its
tallies (summable counts and per-image Dice) and the final pipeline's submission rows, and
``write_ablation`` gathers them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vocflow import metrics
from vocflow.artifacts import TASKS, Selection, dequantize, load_npz, read_yaml
from vocflow.atomic import save_npz, write_csv
from vocflow.data.cache import load_cache
from vocflow.errors import ConfigError, DataError
from vocflow.postprocess import Pipeline, Tally, post_image, segment, shard_positions
from vocflow.rle import COLUMNS, rle_encode, write_submission
from vocflow.runtime import set_threads
from vocflow.thresholds import apply_classification

log = logging.getLogger(__name__)
STEPS = ("raw", "+thresholds", "+crf", "+tta", "+ensemble", "+refit")
REFIT_MODES = ("off", "alone", "with_folds")  # predict.refit / predict.refit_with_folds
OOF_STEPS = STEPS[:4]
ABLATION_COLUMNS = ["task", "step", "kaggle", "miou", "dice", "f1", "eval_set", "images", "notes"]


# --------------------------------------------------------------------------- OOF inputs


def aligned_oof(selection_yaml: str | Path, tta_npz: str | Path) -> dict[str, Any]:
    """The selected cell's OOF and its TTA re-prediction, both sorted by train-cache row."""
    oof = Selection.read(selection_yaml).load_oof()
    tta = load_npz(tta_npz)
    order, tta_order = np.argsort(oof["index"]), np.argsort(tta["index"])
    if not np.array_equal(oof["index"][order], tta["index"][tta_order]):
        raise DataError(f"{tta_npz} covers other images than the OOF of {selection_yaml}; "
                        "re-run the oof_tta rule")
    return {"index": oof["index"][order], "probs": oof["probs"][order], "scale": oof["scale"],
            "tta": tta["probs"][tta_order], "tta_scale": float(tta["scale"])}


def common_rows(oofs: Mapping[str, Mapping[str, Any]]) -> np.ndarray:
    """Train-cache rows that both tasks' OOF cover (they share folds, so all of them)."""
    rows = [np.asarray(o["index"]) for o in oofs.values()]
    if any(not np.array_equal(rows[0], r) for r in rows[1:]):
        raise DataError("the classification and segmentation OOF files cover different images; "
                        "re-run training with the same results/data/folds.csv")
    return rows[0]


# --------------------------------------------------------------------------- shard


def image_steps(pipe: Pipeline, use_tta: bool, cls: Mapping[str, Any], seg: Mapping[str, Any],
                pos: int, image: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(labels (C,), mask (H, W)) of one OOF image after each OOF step, plus 'final' (the
    submission's pipeline, vocflow.postprocess.post_image, on the view the submission uses)."""
    p = dequantize(cls["probs"][pos], cls["scale"])
    p_tta = dequantize(cls["tta"][pos], cls["tta_scale"])
    thr = apply_classification(p, pipe.cls_thresholds)
    q, scale, t = seg["probs"][pos], seg["scale"], pipe.seg_thresholds
    thr_mask = segment(image, q, scale, t, None)
    crf_mask = segment(image, q, scale, t, pipe.crf_params) if pipe.crf_params else thr_mask
    tta = post_image(pipe, p_tta, seg["tta"][pos], seg["tta_scale"], image)
    # Without TTA the final pipeline runs on the plain view (one more CRF pass when CRF is kept).
    final = tta if use_tta else post_image(pipe, p, q, scale, image)
    return {"raw": ((p >= 0.5).astype(np.uint8), segment(image, q, scale, None, None)),
            "+thresholds": (thr, thr_mask), "+crf": (thr, crf_mask),
            "+tta": (tta.labels, tta.mask), "final": (final.final, final.mask)}


def ablation_shard(train_cache_dir: str | Path, selections: Mapping[str, str | Path],
                   tta_npzs: Mapping[str, str | Path], thresholds: Mapping[str, str | Path],
                   crf_yaml: str | Path, reconcile_mode: str, use_tta: bool, shards: int,
                   shard: int, out_npz: str | Path, threads: int = 1) -> None:
    """Score the OOF steps on this shard's images; keep the final pipeline's submission rows."""
    set_threads(threads)  # shards share the node: no oversubscription
    cache = load_cache(train_cache_dir)
    oofs = {t: aligned_oof(selections[t], tta_npzs[t]) for t in TASKS}
    rows = common_rows(oofs)
    pipe = Pipeline.read(cache.class_names, thresholds, crf_yaml, reconcile_mode)
    c = len(cache.class_names)
    tallies = {step: Tally(c) for step in OOF_STEPS}
    positions = shard_positions(len(rows), shards, shard)
    ids, cls_rle, seg_rle = [], [], []
    for pos in positions.tolist():
        i = int(rows[pos])
        steps = image_steps(pipe, use_tta, oofs["classification"], oofs["segmentation"], pos,
                            cache.original_image(i))
        for step in OOF_STEPS:
            tallies[step].add(*steps[step], cache.labels[i], cache.original_mask(i))
        labels, mask = steps["final"]
        ids.append(cache.ids[i])
        cls_rle.append(rle_encode(labels))
        seg_rle.append(rle_encode(metrics.segmentation_stack(mask, c)))
    arrays = {k: v for j, t in enumerate(tallies.values()) for k, v in t.arrays(f"s{j}_").items()}
    save_npz(out_npz, rows=rows[positions], ids=np.asarray(ids, dtype=str),
             cls_rle=np.asarray(cls_rle, dtype=str), seg_rle=np.asarray(seg_rle, dtype=str),
             **arrays)
    log.info("ablation shard %d/%d: %d OOF images", shard, shards, len(ids))


# --------------------------------------------------------------------------- gather


def _notes(task: str, step: str, crf: Mapping[str, Any], use_tta: bool) -> str:
    if step == "raw":
        return ("OOF, every fold: p >= 0.5" if task == "classification" else
                "OOF, every fold: arg-max of the bilinearly upsampled probabilities")
    if step == "+thresholds":
        return "per-class thresholds tuned on these same OOF predictions (in-sample, optimistic)"
    if step == "+crf" and task == "classification":
        return "CRF is segmentation-only: unchanged"
    if step == "+crf":
        if not crf.get("params"):
            return "CRF disabled (post.crf.enabled): unchanged"
        verdict = "kept" if crf.get("keep") else "dropped, so +tta goes on without it"
        return (f"DenseCRF {crf['params']}; {verdict} (search gain {crf.get('gain', 0):+.4f} on "
                f"{crf.get('images', 0)} OOF images)")
    return ("each fold's model re-predicts its own validation images with horizontal flips"
            + ("" if use_tta else "; not used in the submission (predict.tta: false)"))


def _na(base: dict[str, Any], why: str) -> dict[str, Any]:
    return {**base, "kaggle": np.nan, "miou": np.nan, "dice": np.nan, "f1": np.nan,
            "notes": f"n/a: {why}"}


def ensemble_row(task: str, test: Mapping[str, Any]) -> dict[str, Any]:
    """The +ensemble row from test_ensemble.yaml (NaN with the reason when unlabelled)."""
    base = {"task": task, "step": "+ensemble", "eval_set": "test",
            "images": int(test.get("images") or 0)}
    leak = ("not OOF: each OOF image has one out-of-fold model and an all-fold ensemble would "
            "include models trained on it (leaky)")
    if not test.get("labelled"):
        return _na(base, f"the test split has no labels; {leak}")
    ens = (test.get("fold_ensemble") or test["ensemble"])[task]
    folds = [f[task] for f in test["folds"]]
    single = float(np.mean([f["kaggle"] for f in folds])) if folds else float("nan")
    return {**base, **{k: ens.get(k, np.nan) for k in ("kaggle", "miou", "dice", "f1")},
            "notes": f"labelled test split, full pipeline with the {len(folds)}-fold ensemble; "
                     f"{leak}; single fold models, same pipeline and images: mean kaggle "
                     f"{single:.4f} (ensemble gain {ens['kaggle'] - single:+.4f})"}


def refit_row(task: str, test: Mapping[str, Any], refit: str) -> dict[str, Any]:
    """The +refit row: the submission's models (refits alone or with the folds) on the labelled
    test split, beside the fold ensemble (the +ensemble row)."""
    base = {"task": task, "step": "+refit", "eval_set": "test",
            "images": int(test.get("images") or 0)}
    if refit == "off":
        return _na(base, "predict.refit is false")
    if not test.get("labelled") or "refit" not in test:
        return _na(base, "the test split has no labels")
    final, alone, folds = (test[k][task] for k in ("ensemble", "refit", "fold_ensemble"))
    members = "refit models and fold models averaged" if refit == "with_folds" else "refits alone"
    return {**base, **{k: final.get(k, np.nan) for k in ("kaggle", "miou", "dice", "f1")},
            "notes": f"labelled test split, full pipeline: {members} (predict.refit); refits "
                     f"alone: kaggle {alone['kaggle']:.4f} miou {alone['miou']:.4f}; fold "
                     f"ensemble: kaggle {folds['kaggle']:.4f} miou {folds['miou']:.4f}"}


def ablation_table(parts: Sequence[Mapping[str, np.ndarray]], num_classes: int,
                   crf: Mapping[str, Any], test: Mapping[str, Any],
                   use_tta: bool, refit: str = "off") -> pd.DataFrame:
    """Rows task x STEPS, in order, with ABLATION_COLUMNS."""
    images = sum(len(p["rows"]) for p in parts)
    rows = []
    for task in TASKS:
        for j, step in enumerate(OOF_STEPS):
            scores = Tally.merge(parts, f"s{j}_", num_classes).scores(task)
            rows.append({"task": task, "step": step, **scores, "eval_set": "oof",
                         "images": images, "notes": _notes(task, step, crf, use_tta)})
        rows.append(ensemble_row(task, test))
        rows.append(refit_row(task, test, refit))
    return pd.DataFrame(rows, columns=ABLATION_COLUMNS)


def oof_submission(parts: Sequence[Mapping[str, np.ndarray]]) -> pd.DataFrame:
    """The final pipeline's OOF predictions as Kaggle rows, in train-cache order."""
    rows = np.concatenate([p["rows"] for p in parts])
    ids, cls, seg = (np.concatenate([p[k] for p in parts]) for k in ("ids", "cls_rle", "seg_rle"))
    order = np.argsort(rows)
    out_ids = [f"{i}_{kind}" for i in ids[order] for kind in ("classification", "segmentation")]
    predicted = [v for a, b in zip(cls[order], seg[order], strict=True) for v in (a, b)]
    return pd.DataFrame({"Id": out_ids, "Predicted": predicted}, columns=COLUMNS)


def write_ablation(shard_npzs: Sequence[str | Path], train_cache_dir: str | Path,
                   crf_yaml: str | Path, test_yaml: str | Path, use_tta: bool,
                   out_csv: str | Path, oof_submission_csv: str | Path,
                   refit: str = "off") -> None:
    """Gather the shards into results/ablation.csv and the OOF submission (for oof_score);
    ``refit``: how the submission uses refits (REFIT_MODES)."""
    if refit not in REFIT_MODES:
        raise ConfigError(f"refit mode '{refit}' is unknown; valid: {', '.join(REFIT_MODES)}")
    parts = [load_npz(path) for path in shard_npzs]
    crf, test = read_yaml(crf_yaml), read_yaml(test_yaml)
    num_classes = len(load_cache(train_cache_dir).class_names)
    table = ablation_table(parts, num_classes, crf, test, use_tta, refit)
    write_csv(out_csv, table)
    write_submission(oof_submission_csv, oof_submission(parts))
    for r in table.itertuples():
        log.info("%s %-12s kaggle %.4f miou %.4f (%s)", r.task, r.step, r.kaggle, r.miou,
                 r.eval_set)
