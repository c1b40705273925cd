"""Tests for vocflow.rle: byte-exact encodings, round trips, malformed strings, the scorer."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vocflow import metrics
from vocflow.errors import DataError
from vocflow.rle import (
    rle_decode,
    rle_encode,
    score_submission,
    submission_rows,
    write_submission,
)


def classic_rle(a: np.ndarray) -> str:
    """The classic Kaggle snippet, verbatim, as the reference encoder."""
    pixels = np.concatenate([[0], a.flatten(), [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return " ".join(str(x) for x in runs)


# ------------------------------------------------------------------------------------------
# Encoding
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([0, 1, 1, 0, 1]), "2 2 5 1"),  # run at 2 of 2, run at 5 of 1
        (np.ones(4, dtype=np.uint8), "1 4"),
        (np.zeros(6, dtype=int), ""),
        (np.zeros((0,), dtype=bool), ""),
        (np.array([True, False, True]), "1 1 3 1"),
        # C order: flat [1,0,0,0,1,1] -> "1 1 5 2" (Fortran order would give "1 1 4 1 6 1")
        (np.array([[1, 0, 0], [0, 1, 1]]), "1 1 5 2"),
        # (2,2,2): flat [0,1,1,1,1,0,0,1] -> run at 2 of 4, run at 8 of 1
        (np.array([[[0, 1], [1, 1]], [[1, 0], [0, 1]]]), "2 4 8 1"),
        (np.array([1.0, 0.0, 1.0]), "1 1 3 1"),
    ],
)
def test_rle_encode_hand_cases(array, expected):
    assert rle_encode(array) == expected


@pytest.mark.parametrize("bad", [np.array([0, 2]), np.array([0.5, 1.0]), np.array(["1", "0"])])
def test_rle_encode_rejects_non_binary(bad):
    with pytest.raises(ValueError):
        rle_encode(bad)


@pytest.mark.parametrize("seed", range(40))
def test_round_trip_random_arrays(seed):
    rng = np.random.default_rng(seed)
    shapes = [(1,), (7,), (3, 5), (20, 6, 7), (2, 3, 4, 5)]
    shape = shapes[seed % len(shapes)]
    density = rng.random()
    a = (rng.random(shape) < density).astype(np.uint8)
    encoded = rle_encode(a)
    assert encoded == classic_rle(a)
    decoded = rle_decode(encoded, shape)
    assert decoded.dtype == np.uint8 and decoded.shape == shape
    np.testing.assert_array_equal(decoded, a)


# ------------------------------------------------------------------------------------------
# Decoding
# ------------------------------------------------------------------------------------------


def test_rle_decode_hand_cases():
    np.testing.assert_array_equal(rle_decode("2 2 5 1", (5,)), [0, 1, 1, 0, 1])
    np.testing.assert_array_equal(rle_decode("1 1 5 2", (2, 3)), [[1, 0, 0], [0, 1, 1]])
    # adjacent runs are not what the encoder writes but are unambiguous
    np.testing.assert_array_equal(rle_decode("1 2 3 1", (4,)), [1, 1, 1, 0])


@pytest.mark.parametrize("empty", ["", None, float("nan"), np.nan])
def test_rle_decode_empty_is_zeros(empty):
    out = rle_decode(empty, (2, 3))
    assert out.shape == (2, 3) and out.dtype == np.uint8 and not out.any()


@pytest.mark.parametrize(
    ("rle", "why"),
    [
        ("1", "odd number"),
        ("1 2 3", "odd number"),
        ("1 a", "not an integer"),
        ("1.5 2", "not an integer"),
        ("0 2", "< 1"),
        ("-1 2", "< 1"),
        ("1 0", "not positive"),
        ("1 -2", "not positive"),
        ("5 1 2 1", "overlaps or precedes"),  # not increasing
        ("1 3 2 1", "overlaps or precedes"),  # overlapping
        ("4 2", "past the array"),  # ends at 5 of 4
        ("5 1", "past the array"),  # starts past the end
        ("1 " + "9" * 40, "past the array"),  # absurd length
    ],
)
def test_rle_decode_malformed(rle, why):
    with pytest.raises(DataError, match=why) as info:
        rle_decode(rle, (4,))
    assert "\n" not in str(info.value)


def test_rle_decode_message_is_short_for_long_strings():
    long_rle = " ".join(["1"] * 10_001)
    with pytest.raises(DataError) as info:
        rle_decode(long_rle, (4,))
    assert len(str(info.value)) < 200


def test_rle_decode_rejects_non_string():
    with pytest.raises(DataError):
        rle_decode(5, (4,))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# Submission frame and file
# ------------------------------------------------------------------------------------------

C = 3
IDS = ["a", "b"]
LABELS = np.array([[1, 0, 1], [0, 0, 0]])
MASK_A = np.array([[0, 1], [3, 255]], dtype=np.uint8)
MASK_B = np.zeros((1, 3), dtype=np.uint8)
# a_classification: [1,0,1] -> "1 1 3 1"
# a_segmentation: planes ==1 [0,1,0,0], ==2 [0,0,0,0], ==3 [0,0,1,0]; flat 12 -> ones at
#   positions 2 and 8+3=11 -> "2 1 11 1" (background and void are in no plane)
# b: nothing -> empty fields
EXPECTED_CSV = (
    "Id,Predicted\n"
    "a_classification,1 1 3 1\n"
    "a_segmentation,2 1 11 1\n"
    "b_classification,\n"
    "b_segmentation,\n"
)


def test_submission_rows_and_csv_text_exact(tmp_path):
    frame = submission_rows(IDS, LABELS, [MASK_A, MASK_B], num_classes=C)
    assert list(frame.columns) == ["Id", "Predicted"]
    path = tmp_path / "sub" / "submission.csv"
    write_submission(path, frame)
    assert path.read_bytes() == EXPECTED_CSV.encode()
    assert not list(path.parent.glob(".*"))  # no temporary file left behind


def test_submission_rows_rejects_mismatched_input():
    with pytest.raises(ValueError):
        submission_rows(IDS, LABELS[:1], [MASK_A, MASK_B], C)
    with pytest.raises(ValueError):
        submission_rows(IDS, LABELS, [MASK_A], C)


# ------------------------------------------------------------------------------------------
# Scorer
# ------------------------------------------------------------------------------------------


def _score(frame_or_path):
    return score_submission(frame_or_path, IDS, LABELS, [MASK_A, MASK_B], C)


def test_perfect_submission_scores_one(tmp_path):
    frame = submission_rows(IDS, LABELS, [MASK_A, MASK_B], C)
    assert _score(frame) == {"score": 1.0, "classification": 1.0, "segmentation": 1.0, "rows": 4}
    path = tmp_path / "submission.csv"
    write_submission(path, frame)
    assert _score(path) == _score(str(path)) == _score(frame)


def test_one_wrong_class_hand_computed():
    frame = submission_rows(IDS, np.array([[1, 1, 1], [0, 0, 0]]), [MASK_A, MASK_B], C)
    result = _score(frame)
    # a_classification: pred {0,1,2}, truth {0,2} -> 2*2/(3+2) = 0.8; other rows 1.0
    assert result["classification"] == pytest.approx((0.8 + 1.0) / 2)
    assert result["segmentation"] == 1.0
    assert result["score"] == pytest.approx((0.8 + 1 + 1 + 1) / 4)  # 0.95
    assert result["rows"] == 4


def test_wrong_segmentation_on_empty_truth_scores_zero():
    pred_b = np.array([[0, 2, 0]], dtype=np.uint8)
    frame = submission_rows(IDS, LABELS, [MASK_A, pred_b], C)
    result = _score(frame)
    # b_segmentation: truth empty, prediction one pixel -> 0; others 1 -> (1+1+1+0)/4
    assert result["score"] == pytest.approx(0.75)
    assert result["segmentation"] == pytest.approx(0.5)


def test_scorer_agrees_with_metrics_rows():
    rng = np.random.default_rng(7)
    masks = [rng.choice([0, 1, 2, 3, 255], size=(4, 5)).astype(np.uint8) for _ in IDS]
    preds = [rng.integers(0, 4, size=(4, 5)).astype(np.uint8) for _ in IDS]
    pred_labels = rng.integers(0, 2, size=(2, C))
    frame = submission_rows(IDS, pred_labels, preds, C)
    result = score_submission(frame, IDS, LABELS, masks, C)
    # The competition score: the plain mean over both rows of every image.
    rows = [metrics.kaggle_classification_dice(p, t) for p, t in zip(pred_labels, LABELS,
                                                                      strict=True)]
    rows += [metrics.kaggle_segmentation_dice(p, t, C) for p, t in zip(preds, masks, strict=True)]
    assert result["score"] == pytest.approx(np.mean(rows))


def _good_frame() -> pd.DataFrame:
    return submission_rows(IDS, LABELS, [MASK_A, MASK_B], C)


def test_scorer_missing_id_names_it():
    frame = _good_frame()
    frame = frame[~frame["Id"].str.startswith("b_")]
    with pytest.raises(DataError, match="'b'"):
        _score(frame)


def test_scorer_missing_column():
    with pytest.raises(DataError, match="Predicted"):
        _score(_good_frame().rename(columns={"Predicted": "Pred"}))


def test_scorer_duplicate_rows():
    frame = _good_frame()
    with pytest.raises(DataError, match="duplicate"):
        _score(pd.concat([frame, frame.iloc[:1]]))


def test_scorer_unknown_id():
    frame = pd.concat([_good_frame(), pd.DataFrame({"Id": ["z_segmentation"], "Predicted": [""]})])
    with pytest.raises(DataError, match="z_segmentation"):
        _score(frame)


def test_scorer_names_row_with_malformed_rle():
    frame = _good_frame()
    frame.loc[frame["Id"] == "a_segmentation", "Predicted"] = "1 2 3"
    with pytest.raises(DataError, match="a_segmentation"):
        _score(frame)


def test_scorer_run_past_truth_shape():
    frame = _good_frame()
    # truth b is (1, 3) -> stack (3, 1, 3) = 9 elements; a run ending at 10 is past the end
    frame.loc[frame["Id"] == "b_segmentation", "Predicted"] = "9 2"
    with pytest.raises(DataError, match="past the array"):
        _score(frame)
    assert not math.isnan(_score(_good_frame())["score"])
