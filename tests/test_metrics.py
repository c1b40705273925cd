"""Tests for vocflow.metrics: hand-computed tiny cases plus sklearn cross-checks for AP."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from vocflow import metrics as M

# ------------------------------------------------------------------------------------------
# Confusion matrix
# ------------------------------------------------------------------------------------------


def test_confusion_matrix_skips_void_pixels():
    pred = np.array([[0, 1, 2], [1, 1, 0]], dtype=np.uint8)
    target = np.array([[0, 1, 255], [1, 2, 0]], dtype=np.uint8)
    # (truth, pred) pairs: (0,0) (1,1) [void skipped] (1,1) (2,1) (0,0)
    expected = np.array([[2, 0, 0], [0, 2, 0], [0, 1, 0]])
    cm = M.confusion_matrix(pred, target, num_classes=3)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, expected)


def test_confusion_matrix_batched_equals_sum_of_images():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 4, size=(3, 5, 6))
    target = rng.integers(0, 4, size=(3, 5, 6))
    target[0, 0, :] = 255
    whole = M.confusion_matrix(pred, target, 4)
    parts = sum(M.confusion_matrix(p, t, 4) for p, t in zip(pred, target, strict=True))
    np.testing.assert_array_equal(whole, parts)
    assert whole.sum() == pred.size - 6  # six void pixels dropped


def test_confusion_matrix_no_uint8_overflow():
    # target * K + pred = 20 * 21 + 20 = 440 > 255: must not wrap around in uint8.
    pred = np.full((2, 2), 20, dtype=np.uint8)
    target = np.full((2, 2), 20, dtype=np.uint8)
    cm = M.confusion_matrix(pred, target, 21)
    assert cm[20, 20] == 4 and cm.sum() == 4


@pytest.mark.parametrize(
    ("pred", "target"),
    [
        (np.zeros((2, 2), int), np.zeros((2, 3), int)),  # shape mismatch
        (np.full((2, 2), 3), np.zeros((2, 2), int)),  # pred out of range
        (np.full((2, 2), 255), np.zeros((2, 2), int)),  # pred may not be void
        (np.zeros((2, 2), int), np.full((2, 2), 7)),  # target out of range, not void
        (np.full((2, 2), -1), np.zeros((2, 2), int)),  # negative
        (np.zeros((2, 2), float), np.zeros((2, 2), int)),  # non-integer dtype
    ],
)
def test_confusion_matrix_rejects_bad_input(pred, target):
    with pytest.raises(ValueError):
        M.confusion_matrix(pred, target, num_classes=3)


# ------------------------------------------------------------------------------------------
# IoU / Dice from a confusion matrix
# ------------------------------------------------------------------------------------------

# rows = truth, cols = prediction
CM = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 0]])
# class 0: tp=5, fp=(5+2)-5=2, fn=(5+1)-5=1     -> IoU 5/8, Dice 10/13
# class 1: tp=3, fp=(1+3)-3=1, fn=(2+3+1)-3=3   -> IoU 3/7, Dice 6/10
# class 2: tp=0, fp=1,         fn=0             -> IoU 0,   Dice 0 (predicted, never true)


def test_iou_and_dice_from_3x3():
    np.testing.assert_allclose(M.iou_from_confusion(CM), [5 / 8, 3 / 7, 0.0])
    np.testing.assert_allclose(M.dice_from_confusion(CM), [10 / 13, 6 / 10, 0.0])
    assert M.mean_iou(CM) == pytest.approx((5 / 8 + 3 / 7 + 0) / 3)
    assert M.mean_iou(CM, exclude=(0,)) == pytest.approx((3 / 7 + 0) / 2)


def test_absent_class_is_nan_and_left_out_of_mean():
    cm = np.array([[3, 1, 0], [1, 2, 0], [0, 0, 0]])
    # class 0: tp=3, fp=1, fn=1 -> IoU 3/5; class 1: tp=2, fp=1, fn=1 -> IoU 2/4; class 2 absent
    iou = M.iou_from_confusion(cm)
    np.testing.assert_allclose(iou[:2], [0.6, 0.5])
    assert math.isnan(iou[2])
    assert math.isnan(M.dice_from_confusion(cm)[2])
    assert M.mean_iou(cm) == pytest.approx((0.6 + 0.5) / 2)
    assert M.mean_iou(cm, exclude=(0,)) == pytest.approx(0.5)
    assert math.isnan(M.mean_iou(np.zeros((3, 3), int)))


# ------------------------------------------------------------------------------------------
# Multilabel counts and F1
# ------------------------------------------------------------------------------------------

PRED = np.array([[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
TRUE = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0]])
# class 0: pred [1,1,0] true [1,0,1] -> tp 1 fp 1 fn 1 -> F1 2/(2+1+1) = 0.5
# class 1: pred [0,1,0] true [0,1,0] -> tp 1 fp 0 fn 0 -> F1 1
# class 2: pred [1,0,0] true [0,0,0] -> tp 0 fp 1 fn 0 -> F1 0
# class 3: nothing anywhere          -> 0/0          -> NaN, excluded from the macro mean


def test_multilabel_counts_and_f1():
    counts = M.multilabel_counts(PRED, TRUE)
    np.testing.assert_array_equal(counts.tp, [1, 1, 0, 0])
    np.testing.assert_array_equal(counts.fp, [1, 0, 1, 0])
    np.testing.assert_array_equal(counts.fn, [1, 0, 0, 0])
    f1 = M.f1_from_counts(counts.tp, counts.fp, counts.fn)
    np.testing.assert_allclose(f1[:3], [0.5, 1.0, 0.0])
    assert math.isnan(f1[3])
    assert M.macro_f1(counts.tp, counts.fp, counts.fn) == pytest.approx((0.5 + 1 + 0) / 3)


def test_multilabel_counts_accumulate_over_batches():
    whole = M.multilabel_counts(PRED.astype(bool), TRUE.astype(bool))
    summed = M.multilabel_counts(PRED[:2], TRUE[:2]) + M.multilabel_counts(PRED[2:], TRUE[2:])
    for name in ("tp", "fp", "fn"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(summed, name))


def test_multilabel_counts_rejects_bad_input():
    with pytest.raises(ValueError):
        M.multilabel_counts(PRED * 2, TRUE)  # not binary
    with pytest.raises(ValueError):
        M.multilabel_counts(PRED[:, :3], TRUE)  # shape mismatch


# ------------------------------------------------------------------------------------------
# Average precision
# ------------------------------------------------------------------------------------------


def test_average_precision_hand_value():
    # ranked: + - + -   -> P@1 = 1 (R .5), P@3 = 2/3 (R 1)
    # AP = 0.5 * 1 + 0.5 * 2/3 = 5/6
    ap = M.average_precision(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0]))
    assert ap == pytest.approx(5 / 6)


def test_average_precision_ties_enter_together():
    # thresholds: 0.9 -> tp 0/1; 0.5 -> tp 1 of 3 (P 1/3, R .5); 0.1 -> tp 2 of 4 (P .5, R 1)
    # AP = 0.5 * 1/3 + 0.5 * 1/2 = 5/12 (ranking the tied positive first would give 1/2)
    ap = M.average_precision(np.array([0.9, 0.5, 0.5, 0.1]), np.array([0, 1, 0, 1]))
    assert ap == pytest.approx(5 / 12)


def test_average_precision_no_positives_is_nan():
    assert math.isnan(M.average_precision(np.array([0.3, 0.2]), np.array([0, 0])))


@pytest.mark.parametrize("seed", range(25))
def test_average_precision_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 80))
    scores = rng.integers(0, 6, size=n) / 5.0  # few distinct values: many ties
    target = rng.integers(0, 2, size=n)
    target[rng.integers(0, n)] = 1
    assert M.average_precision(scores, target) == pytest.approx(
        average_precision_score(target, scores), abs=1e-12
    )


@pytest.mark.parametrize("seed", range(5))
def test_mean_average_precision_matches_sklearn_macro(seed):
    rng = np.random.default_rng(100 + seed)
    scores = rng.random((40, 6)).round(1)
    target = rng.integers(0, 2, size=(40, 6))
    target[0] = 1  # every class has a positive
    expected = average_precision_score(target, scores, average="macro")
    assert M.mean_average_precision(scores, target) == pytest.approx(expected, abs=1e-12)


def test_mean_average_precision_skips_classes_without_positives():
    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.1, 0.2]])
    target = np.array([[1, 0], [0, 0], [1, 0]])
    # class 0: + - +  -> AP = 0.5 * 1 + 0.5 * 2/3 = 5/6; class 1: no positives -> skipped
    assert M.mean_average_precision(scores, target) == pytest.approx(5 / 6)


# ------------------------------------------------------------------------------------------
# Kaggle Dice
# ------------------------------------------------------------------------------------------


def test_dice_coefficient_cases():
    empty = np.zeros((2, 3), dtype=bool)
    some = np.array([[0, 1, 0], [0, 0, 0]])
    assert M.dice_coefficient(empty, empty) == 1.0  # competition rule
    assert M.dice_coefficient(empty, some) == 0.0
    assert M.dice_coefficient(some, empty) == 0.0
    # |A|=2, |B|=2, |A∩B|=1 -> 2*1/4
    assert M.dice_coefficient(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])) == 0.5
    with pytest.raises(ValueError):
        M.dice_coefficient(np.array([0, 2]), np.array([0, 1]))
    with pytest.raises(ValueError):
        M.dice_coefficient(np.zeros(3), np.zeros(4))


def test_segmentation_stack_excludes_background_and_void():
    mask = np.array([[0, 1], [255, 3]], dtype=np.uint8)
    stack = M.segmentation_stack(mask, num_classes=3)
    assert stack.shape == (3, 2, 2) and stack.dtype == bool
    np.testing.assert_array_equal(stack[0], [[0, 1], [0, 0]])
    np.testing.assert_array_equal(stack[1], [[0, 0], [0, 0]])
    np.testing.assert_array_equal(stack[2], [[0, 0], [0, 1]])
    with pytest.raises(ValueError):
        M.segmentation_stack(np.array([[4]]), 3)  # label above C, not void
    with pytest.raises(ValueError):
        M.segmentation_stack(np.zeros((2, 2, 2), int), 3)


def test_kaggle_segmentation_dice_background_and_void():
    truth = np.array([[0, 1], [255, 2]], dtype=np.uint8)
    pred = np.array([[1, 1], [2, 2]], dtype=np.uint8)
    # truth planes: class1 {(0,1)}, class2 {(1,1)}                  -> |B| = 2
    # pred planes:  class1 {(0,0),(0,1)}, class2 {(1,0),(1,1)}      -> |A| = 4
    # overlap: class1 (0,1), class2 (1,1) -> 2; Dice = 2*2/(4+2) = 2/3
    # (pred on background (0,0) and on void (1,0) both count as false positives)
    assert M.kaggle_segmentation_dice(pred, truth, 3) == pytest.approx(2 / 3)
    # predicting background on void and background is perfect when truth has no objects
    only_void = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    assert M.kaggle_segmentation_dice(np.zeros((2, 2), np.uint8), only_void, 3) == 1.0


def test_kaggle_classification_dice_and_score():
    # |A|=2, |B|=2, overlap 1 -> 0.5
    assert M.kaggle_classification_dice(np.array([1, 0, 1]), np.array([1, 1, 0])) == 0.5
    assert M.kaggle_classification_dice(np.zeros(3), np.zeros(3)) == 1.0
    pred_labels = np.array([[1, 0, 1], [0, 0, 0]])
    true_labels = np.array([[1, 1, 0], [0, 0, 0]])
    truth_a = np.array([[0, 1], [255, 2]], dtype=np.uint8)
    pred_a = np.array([[1, 1], [2, 2]], dtype=np.uint8)
    empty = np.zeros((1, 3), np.uint8)
    rows = [f(p, t) for p, t in ((pred_labels[0], true_labels[0]), (pred_a, truth_a),
                                 (pred_labels[1], true_labels[1]), (empty, empty))
            for f in [M.kaggle_classification_dice if p.ndim == 1 else
                      lambda a, b: M.kaggle_segmentation_dice(a, b, 3)]]
    # rows: a_cls 0.5, a_seg 2/3, b_cls 1 (empty/empty), b_seg 1 (empty/empty)
    np.testing.assert_allclose(rows, [0.5, 2 / 3, 1.0, 1.0])


# ------------------------------------------------------------------------------------------
# ROC-AUC
# ------------------------------------------------------------------------------------------


def test_roc_auc_hand_value():
    # Positives score 0.8 and 0.4, negatives 0.6 and 0.2: of the 4 (pos, neg) pairs, 3 are
    # ordered correctly -> 3/4.
    assert M.roc_auc(np.array([0.8, 0.6, 0.4, 0.2]), np.array([1, 0, 1, 0])) == 0.75


def test_roc_auc_ties_count_half():
    # One positive and one negative with the same score: 1/2.
    assert M.roc_auc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5


def test_roc_auc_single_class_is_nan():
    assert math.isnan(M.roc_auc(np.array([0.1, 0.9]), np.array([1, 1])))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_matches_sklearn_per_class_and_macro(seed):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 2, size=(40, 5))
    target[0], target[1] = 0, 1  # every column has both classes
    scores = np.round(rng.random((40, 5)) + 0.3 * target, 1)  # rounded: many ties
    expected = [roc_auc_score(target[:, c], scores[:, c]) for c in range(5)]
    np.testing.assert_allclose(M.per_class_roc_auc(scores, target), expected, rtol=1e-12)
    assert M.macro_roc_auc(scores, target) == pytest.approx(
        roc_auc_score(target, scores, average="macro"), rel=1e-12)


def test_macro_roc_auc_skips_single_class_columns():
    scores = np.array([[0.9, 0.1], [0.2, 0.3], [0.7, 0.8]])
    target = np.array([[1, 0], [0, 0], [1, 0]])  # column 1 has no positive
    assert M.macro_roc_auc(scores, target) == 1.0
