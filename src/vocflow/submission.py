"""The Kaggle submission from the two tasks' test predictions, and its score when labels exist."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from vocflow.artifacts import Selection, load_npz, read_masks
from vocflow.atomic import write_yaml
from vocflow.baseline import random_test_predictions
from vocflow.data.cache import load_cache
from vocflow.errors import DataError
from vocflow.rle import score_submission, submission_rows, write_submission

log = logging.getLogger(__name__)


def failed_cells(selections: str | Path | Iterable[str | Path]) -> list[str]:
    """task/model/loss of the cells that failed in the grids the selections were chosen from
    (empty unless a selection came from a partial grid)."""
    if isinstance(selections, str | Path):  # a rule's input of one file is a plain string
        selections = [selections]
    return [f"{sel.task}/{cell}" for sel in map(Selection.read, selections)
            for cell in sel.failed_cells]


def warn_partial(failed: list[str], what: str) -> None:
    if failed:
        log.warning("%s from a partial grid: %d cells failed (%s); the selected cells are the "
                    "best of those that finished", what, len(failed), ", ".join(failed))


def build_submission(test_cache_dir: str | Path, classification_npz: str | Path,
                     segmentation_npz: str | Path, out_csv: str | Path,
                     selections: str | Path | Iterable[str | Path] = ()) -> None:
    """Two rows per test image, in the test csv's order: classification, then segmentation.

    ``selections``: the tasks' selected.yaml; one chosen from a partial grid is logged as a
    WARNING (the csv itself stays exactly Kaggle's format).
    """
    cache = load_cache(test_cache_dir)
    cls, seg = load_npz(classification_npz), load_npz(segmentation_npz)
    for name, npz in (("classification", cls), ("segmentation", seg)):
        if list(npz["ids"]) != list(cache.ids):
            raise DataError(f"{name} predictions do not match the test split {test_cache_dir}; "
                            "re-run: snakemake --forcerun predict")
    frame = submission_rows(cache.ids, cls["labels"], read_masks(seg), len(cache.class_names))
    write_submission(out_csv, frame)
    log.info("submission with %d rows written to %s", len(frame), out_csv)
    warn_partial(failed_cells(selections), "submission")


def build_random_submission(train_cache_dir: str | Path, test_cache_dir: str | Path, seed: int,
                            out_csv: str | Path) -> None:
    """The random baseline's submission, scored beside ours to show the floor."""
    test = load_cache(test_cache_dir)
    labels, masks = random_test_predictions(load_cache(train_cache_dir), test, seed)
    write_submission(out_csv, submission_rows(test.ids, labels, masks, len(test.class_names)))


def score_against_cache(submissions: Mapping[str, str | Path], test_cache_dir: str | Path,
                        out_yaml: str | Path,
                        selections: str | Path | Iterable[str | Path] = ()) -> None:
    """Score each named submission with the Kaggle metric on a labelled test split.

    ``selections``: the tasks' selected.yaml; when one came from a partial grid the scores get
    ``partial: true`` and ``failed_cells`` beside them.
    """
    cache = load_cache(test_cache_dir)
    if not cache.labelled:
        raise DataError(f"{test_cache_dir} has no labels to score against; set "
                        "data.test_labels in config/config.yaml or drop the score target")
    masks = [cache.original_mask(i) for i in range(len(cache))]
    scores = {name: score_submission(path, cache.ids, cache.labels, masks, len(cache.class_names))
              for name, path in submissions.items()}
    record: dict[str, object] = {name: {k: float(v) for k, v in s.items()}
                                 for name, s in scores.items()}
    failed = failed_cells(selections)
    if failed:
        record.update(partial=True, failed_cells=failed)
    write_yaml(out_yaml, record)
    for name, s in scores.items():
        log.info("%s submission: Kaggle score %.4f", name, s["score"])
    warn_partial(failed, "scores")


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
