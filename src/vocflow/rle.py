"""The competition's run-length encoding, the submission file, and a local scorer for it.

A submission has two rows per test image, in this order:

* ``{Id}_classification``: RLE of the (C,) 0/1 label vector;
* ``{Id}_segmentation``: RLE of the (C, H, W) stack ``[mask == c + 1 for c in range(C)]``.

RLE is the classic Kaggle one: flatten in C order, 1-based ``start length`` pairs joined by
single spaces; an all-zero array encodes as the empty string. The score is the mean over rows
of the Dice between decoded prediction and truth (``vocflow.metrics.dice_coefficient``).

Depends only on numpy/pandas plus ``vocflow.metrics`` (the pure metric definitions),
``vocflow.errors`` and ``vocflow.atomic``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from vocflow.atomic import write_csv
from vocflow.errors import DataError
from vocflow.metrics import dice_coefficient, segmentation_stack

COLUMNS = ["Id", "Predicted"]
_INT_TOKEN = re.compile(r"-?[0-9]+")


def rle_encode(array: np.ndarray) -> str:
    """Encode a binary array of any shape (bool or 0/1 numbers) as 'start length ...'.

    Runs index the C-order flattening from 1. All zeros (or an empty array) -> ''.
    """
    a = np.asarray(array)
    if a.dtype != np.bool_ and (
        not np.issubdtype(a.dtype, np.number) or not np.isin(a, (0, 1)).all()
    ):
        raise ValueError(f"rle_encode needs a binary array (bool or 0/1), got dtype {a.dtype}")
    # Zero padding at both ends makes every run start and end at a value change.
    pixels = np.concatenate([[0], a.ravel().astype(np.uint8), [0]])
    runs = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1
    runs[1::2] -= runs[::2]
    return " ".join(map(str, runs.tolist()))


def _preview(rle: str, limit: int = 40) -> str:
    """A short repr of an RLE string for one-line error messages (rows can be megabytes)."""
    return repr(rle if len(rle) <= limit else rle[:limit] + "...")


def _is_missing(rle: object) -> bool:
    return rle is None or (isinstance(rle, float) and math.isnan(rle))


def _clipped_int(token: str, size: int) -> int:
    """int(token) clipped to [-1, size + 2]: int64-safe for absurd tokens, same verdicts."""
    if len(token) > 18:  # also dodges Python's limit on converting very long digit strings
        return -1 if token.startswith("-") else size + 2
    return min(max(int(token), -1), size + 2)


def _parse_runs(rle: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse and check 'start length ...' against an array of ``size`` elements.

    Returns 0-based (starts, ends) int64 arrays, ends exclusive. Raises DataError.
    """
    tokens = rle.split()
    where = f"malformed RLE {_preview(rle)}"
    if len(tokens) % 2:
        raise DataError(f"{where}: odd number of tokens ({len(tokens)}); need start/length pairs")
    bad = next((t for t in tokens if not _INT_TOKEN.fullmatch(t)), None)
    if bad is not None:
        raise DataError(f"{where}: token {bad!r} is not an integer")
    values = np.array([_clipped_int(t, size) for t in tokens], dtype=np.int64)
    starts, lengths = values[0::2], values[1::2]
    if (starts < 1).any():
        raise DataError(f"{where}: start {int(starts[starts < 1][0])} < 1 (starts are 1-based)")
    if (lengths < 1).any():
        raise DataError(f"{where}: run length {int(lengths[lengths < 1][0])} is not positive")
    ends = starts - 1 + lengths
    # Adjacent runs (start == previous end + 1) decode fine, so only overlap is an error.
    overlap = np.flatnonzero(starts[1:] <= ends[:-1])
    if overlap.size:
        k = int(overlap[0]) + 1
        raise DataError(f"{where}: run {k + 1} (start {starts[k]}) overlaps or precedes run {k}")
    if ends.size and ends[-1] > size:
        raise DataError(f"{where}: last run ends at {ends[-1]}, past the array's {size} elements")
    return starts - 1, ends


def rle_decode(rle: str | None, shape: tuple[int, ...]) -> np.ndarray:
    """Decode an RLE string into a uint8 0/1 array of ``shape``; '', None or NaN -> all zeros.

    Raises DataError (one line) for a malformed string.
    """
    size = math.prod(shape)
    if _is_missing(rle):
        return np.zeros(shape, dtype=np.uint8)
    if not isinstance(rle, str):
        raise DataError(f"RLE must be a string, got {type(rle).__name__}: {rle!r}")
    starts, ends = _parse_runs(rle, size)
    out = np.zeros(size, dtype=np.uint8)
    # A slice per run beats a cumsum over the whole array: masks have few runs, many pixels.
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        out[start:end] = 1
    return out.reshape(shape)


def submission_rows(
    ids: Sequence[str],
    class_labels: np.ndarray,
    masks: Sequence[np.ndarray],
    num_classes: int,
) -> pd.DataFrame:
    """Build the submission frame: columns Id, Predicted; two rows per image, in ``ids`` order.

    class_labels: (N, C) 0/1; masks: N label masks (H_i, W_i) in 0..C or 255; num_classes = C.
    """
    labels = np.asarray(class_labels)
    if labels.shape != (len(ids), num_classes) or len(masks) != len(ids):
        raise ValueError(
            f"need labels (N, C) = ({len(ids)}, {num_classes}) and {len(ids)} masks, "
            f"got labels {labels.shape} and {len(masks)} masks"
        )
    row_ids: list[str] = []
    predicted: list[str] = []
    for image_id, row, mask in zip(ids, labels, masks, strict=True):
        row_ids += [f"{image_id}_classification", f"{image_id}_segmentation"]
        predicted += [rle_encode(row), rle_encode(segmentation_stack(mask, num_classes))]
    return pd.DataFrame({"Id": row_ids, "Predicted": predicted}, columns=COLUMNS)


def write_submission(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    """Write the submission csv atomically; empty RLEs come out as empty fields."""
    if list(frame.columns) != COLUMNS:
        raise ValueError(f"submission columns must be {COLUMNS}, got {list(frame.columns)}")
    write_csv(path, frame, index=False)


def read_submission(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a submission csv keeping empty predictions as '' (not NaN)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _check_rows(frame: pd.DataFrame, truth_ids: Sequence[str]) -> pd.Series:
    """Validate the submission's rows against the truth Ids; return Predicted indexed by Id."""
    missing_cols = [c for c in COLUMNS if c not in frame.columns]
    if missing_cols:
        raise DataError(f"submission lacks column(s) {missing_cols}; has {list(frame.columns)}")
    row_ids = frame["Id"].astype(str)
    dup = row_ids[row_ids.duplicated()]
    if not dup.empty:
        raise DataError(f"submission has duplicate row Id {dup.iloc[0]!r} ({dup.size} duplicates)")
    expected = {
        f"{i}_{kind}" for i in map(str, truth_ids) for kind in ("classification", "segmentation")
    }
    unknown = row_ids[~row_ids.isin(expected)]
    if not unknown.empty:
        raise DataError(
            f"submission row {unknown.iloc[0]!r} is for an unknown Id ({unknown.size} such rows)"
        )
    present = set(row_ids)
    for image_id in map(str, truth_ids):
        for kind in ("classification", "segmentation"):
            if f"{image_id}_{kind}" not in present:
                raise DataError(f"submission has no {kind} row for Id {image_id!r}")
    return pd.Series(frame["Predicted"].to_numpy(), index=row_ids.to_numpy())


def _decode_row(predicted: pd.Series, row_id: str, shape: tuple[int, ...]) -> np.ndarray:
    """Decode one row's prediction, naming the row if its RLE is malformed."""
    try:
        return rle_decode(predicted[row_id], shape)
    except DataError as exc:
        raise DataError(f"submission row {row_id!r}: {exc}") from exc


def score_submission(
    submission: pd.DataFrame | str | os.PathLike[str],
    truth_ids: Sequence[str],
    truth_labels: np.ndarray,
    truth_masks: Sequence[np.ndarray],
    num_classes: int,
) -> dict[str, float | int]:
    """Score a submission (frame or csv path) with the Kaggle metric.

    truth_labels: (N, C) 0/1; truth_masks: N masks (H_i, W_i); num_classes = C.
    Returns {'score': mean over all rows, 'classification': mean over classification rows,
    'segmentation': mean over segmentation rows, 'rows': number of rows scored}.
    """
    frame = submission if isinstance(submission, pd.DataFrame) else read_submission(submission)
    labels = np.asarray(truth_labels)
    if len(truth_ids) == 0 or labels.shape != (len(truth_ids), num_classes):
        raise ValueError(f"need N > 0 truth Ids and labels (N, {num_classes}), got {labels.shape}")
    if len(truth_masks) != len(truth_ids):
        raise ValueError(f"{len(truth_ids)} truth Ids but {len(truth_masks)} truth masks")
    predicted = _check_rows(frame, truth_ids)
    cls_scores, seg_scores = [], []
    for image_id, true_row, true_mask in zip(map(str, truth_ids), labels, truth_masks, strict=True):
        pred_row = _decode_row(predicted, f"{image_id}_classification", (num_classes,))
        cls_scores.append(dice_coefficient(pred_row, true_row))
        true_stack = segmentation_stack(true_mask, num_classes)
        pred_stack = _decode_row(predicted, f"{image_id}_segmentation", true_stack.shape)
        seg_scores.append(dice_coefficient(pred_stack, true_stack))
    return {
        "score": float(np.mean(cls_scores + seg_scores)),
        "classification": float(np.mean(cls_scores)),
        "segmentation": float(np.mean(seg_scores)),
        "rows": len(cls_scores) + len(seg_scores),
    }
