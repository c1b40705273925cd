"""The DenseCRF parameter search on out-of-fold (OOF) images, and the keep/drop decision.

Every setting of ``post.crf.search`` (and no CRF) runs through the post-processing pipeline's
segmentation step (vocflow.postprocess.segment: upsample -> CRF -> thresholds) on a seeded
sample of the selected cell's OOF images, one job per shard; ``crf_tune`` keeps the best setting
only if it beats no CRF on that sample by more than ``min_gain``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from vocflow import metrics
from vocflow.artifacts import Selection, class_names_for, read_csv
from vocflow.atomic import write_csv, write_yaml
from vocflow.crf import CrfParams, param_grid
from vocflow.data.cache import load_cache
from vocflow.postprocess import sample_positions, segment, shard_positions
from vocflow.runtime import set_threads
from vocflow.thresholds import read_thresholds

log = logging.getLogger(__name__)


def crf_search_shard(selection_yaml: str | Path, train_cache_dir: str | Path,
                     thresholds_yaml: str | Path, search: Mapping[str, Any], sample: int | None,
                     seed: int, shards: int, shard: int, out_csv: str | Path,
                     threads: int = 1) -> None:
    """Score every CRF setting (and no CRF, ``setting = -1``) on this shard of the OOF sample.

    Writes one row per image x setting: id, setting, the setting's keys, kaggle (row Dice).
    """
    set_threads(threads)  # shards share the node: no oversubscription
    oof = Selection.read(selection_yaml).load_oof()
    cache = load_cache(train_cache_dir)
    thresholds = read_thresholds(thresholds_yaml, class_names_for("segmentation",
                                                                   cache.class_names))
    grid = param_grid(search)
    picked = sample_positions(len(oof["index"]), sample, seed)
    rows = []
    for pos in picked[shard_positions(len(picked), shards, shard)]:
        i = int(oof["index"][pos])
        image, truth = cache.original_image(i), cache.original_mask(i)
        for s, params in [(-1, None), *enumerate(grid)]:
            mask = segment(image, oof["probs"][pos], oof["scale"], thresholds, params)
            kaggle = metrics.kaggle_segmentation_dice(mask, truth, len(cache.class_names))
            rows.append({"id": cache.ids[i], "setting": s,
                         **(asdict(params) if params else {}), "kaggle": kaggle})
    write_csv(out_csv, pd.DataFrame(rows, columns=["id", "setting", *asdict(CrfParams()),
                                                   "kaggle"]))
    log.info("CRF search shard %d/%d: %d images x %d settings", shard, shards,
             len(rows) // (len(grid) + 1) if rows else 0, len(grid))


def crf_tune(shard_csvs: Sequence[str | Path], search: Mapping[str, Any], min_gain: float,
             out_yaml: str | Path) -> None:
    """Gather the search shards; keep the best setting only if it beats no CRF by > min_gain."""
    frames = [read_csv(p) for p in shard_csvs]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if table.empty:
        write_yaml(out_yaml, {"keep": False, "reason": "CRF disabled (post.crf.enabled) or no "
                              "search images", "params": None, "search": []})
        return
    grid = param_grid(search)
    means = table.groupby("setting")["kaggle"].agg(["mean", "count"])
    base = float(means.loc[-1, "mean"])
    tried = means.drop(index=-1).sort_values("mean", ascending=False, kind="stable")
    best = int(tried.index[0])
    gain = float(tried.iloc[0]["mean"]) - base
    keep = gain > min_gain
    rows = [{"setting": int(s), **(asdict(grid[int(s)]) if s >= 0 else {"crf": "none"}),
             "kaggle": float(r["mean"]), "images": int(r["count"])} for s, r in means.iterrows()]
    write_yaml(out_yaml, {"keep": bool(keep), "params": asdict(grid[best]),
                          "kaggle_without": base, "kaggle_with": base + gain, "gain": gain,
                          "min_gain": float(min_gain), "images": int(means.loc[-1, "count"]),
                          "search": rows})
    log.info("CRF %s: best setting %d gains %+.4f Kaggle Dice over no CRF on %d OOF images",
             "kept" if keep else "dropped", best, gain, int(means.loc[-1, "count"]))
