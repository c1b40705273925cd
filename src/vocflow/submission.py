"""The Kaggle submission from the two tasks' test predictions, and its score when labels exist."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from vocflow.artifacts import load_npz, read_masks
from vocflow.atomic import write_yaml
from vocflow.baseline import random_test_predictions
from vocflow.data.cache import load_cache
from vocflow.errors import DataError
from vocflow.rle import score_submission, submission_rows, write_submission

log = logging.getLogger(__name__)


def build_submission(test_cache_dir: str | Path, classification_npz: str | Path,
                     segmentation_npz: str | Path, out_csv: str | Path) -> None:
    """Two rows per test image, in the test csv's order: classification, then segmentation."""
    cache = load_cache(test_cache_dir)
    cls, seg = load_npz(classification_npz), load_npz(segmentation_npz)
    for name, npz in (("classification", cls), ("segmentation", seg)):
        if list(npz["ids"]) != list(cache.ids):
            raise DataError(f"{name} predictions do not match the test split {test_cache_dir}; "
                            "re-run: snakemake --forcerun predict")
    frame = submission_rows(cache.ids, cls["labels"], read_masks(seg), len(cache.class_names))
    write_submission(out_csv, frame)
    log.info("submission with %d rows written to %s", len(frame), out_csv)


def build_random_submission(train_cache_dir: str | Path, test_cache_dir: str | Path, seed: int,
                            out_csv: str | Path) -> None:
    """The random baseline's submission, scored beside ours to show the floor."""
    test = load_cache(test_cache_dir)
    labels, masks = random_test_predictions(load_cache(train_cache_dir), test, seed)
    write_submission(out_csv, submission_rows(test.ids, labels, masks, len(test.class_names)))


def score_against_cache(submissions: Mapping[str, str | Path], test_cache_dir: str | Path,
                        out_yaml: str | Path) -> None:
    """Score each named submission with the Kaggle metric on a labelled test split."""
    cache = load_cache(test_cache_dir)
    if not cache.labelled:
        raise DataError(f"{test_cache_dir} has no labels to score against; set "
                        "data.test_labels in config/config.yaml or drop the score target")
    masks = [cache.original_mask(i) for i in range(len(cache))]
    scores = {name: score_submission(path, cache.ids, cache.labels, masks, len(cache.class_names))
              for name, path in submissions.items()}
    write_yaml(out_yaml, {name: {k: float(v) for k, v in s.items()} for name, s in scores.items()})
    for name, s in scores.items():
        log.info("%s submission: Kaggle score %.4f", name, s["score"])


def score_oof(oof_submission_csv: str | Path, train_cache_dir: str | Path,
              out_yaml: str | Path) -> None:
    """Sanity line: the final pipeline's OOF predictions, written and read back as a Kaggle
    submission (RLE both ways), scored on the training labels (``oof_sanity``)."""
    cache = load_cache(train_cache_dir)
    masks = [cache.original_mask(i) for i in range(len(cache))]
    scores = score_submission(oof_submission_csv, cache.ids, cache.labels, masks,
                              len(cache.class_names))
    write_yaml(out_yaml, {"oof_sanity": {k: float(v) for k, v in scores.items()}})
    log.info("OOF sanity: the submission path scores %.4f on the training labels",
             scores["score"])
