"""Every registered loss: finite gradients, void ignored, hand-computed values; class weights
and ``wce``, the auxiliary-head term, loss parameters (γ, α, clip), several classes with void."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vocflow.errors import ConfigError, DataError
from vocflow.losses import (
    CLASSIFICATION_LOSSES,
    SEGMENTATION_LOSSES,
    build_loss,
    class_weights,
    pixel_counts,
)

# Two images of 8 labelled pixels each: A = 6 × class 0 + 2 × class 1, B = 2 × class 0 + 6 ×
# class 2. Totals n = (8, 2, 6) of 16 -> f = (1/2, 1/8, 3/8).
PER_IMAGE = np.array([[6, 2, 0], [2, 0, 6]])


# Tiny tensors: one intra-op thread (conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", CLASSIFICATION_LOSSES.names())
def test_classification_losses_are_finite_and_differentiable(name: str) -> None:
    logits = torch.randn(3, 4, requires_grad=True)
    loss = build_loss("classification", name)(logits, torch.randint(0, 2, (3, 4)).float())
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", SEGMENTATION_LOSSES.names())
def test_segmentation_losses_ignore_void(name: str) -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 4))
    target[:, :2] = 255
    loss_fn = build_loss("segmentation", name, class_counts=[5, 3, 2])  # only wce takes them
    loss = loss_fn(logits, target)
    loss.backward()
    # Changing logits under void pixels changes nothing.
    other = logits.detach().clone()
    other[:, :, :2] = torch.randn(2, 3, 2, 4) * 10
    assert torch.allclose(loss_fn(other, target), loss.detach(), atol=1e-6)
    assert torch.isfinite(logits.grad).all()
    assert (logits.grad[:, :, :2] == 0).all()


def test_bce_hand_computed() -> None:
    # logits 0 -> p = 0.5 -> -ln 0.5 = ln 2 for either target.
    loss = build_loss("classification", "bce")(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx(math.log(2))


def test_ce_hand_computed_ignores_void() -> None:
    # Two classes, logits (0, ln 3) -> p = (1/4, 3/4). Pixel 1 is class 1: -ln 0.75;
    # pixel 2 is void and skipped. Mean over valid pixels = -ln 0.75.
    logits = torch.tensor([0.0, math.log(3)]).view(1, 2, 1, 1).expand(1, 2, 1, 2).clone()
    target = torch.tensor([[[1, 255]]])
    loss = build_loss("segmentation", "ce")(logits, target)
    assert loss.item() == pytest.approx(-math.log(0.75))


def test_dice_hand_computed() -> None:
    # Probabilities (1/4, 3/4) on both valid pixels; truths 1 and 0; smooth 1.
    # class 0: inter = 1/4, sum p = 1/2, sum t = 1 -> (0.5 + 1) / (1.5 + 1) = 0.6
    # class 1: inter = 3/4, sum p = 3/2, sum t = 1 -> (1.5 + 1) / (2.5 + 1) = 5/7
    logits = torch.tensor([0.0, math.log(3)]).view(1, 2, 1, 1).expand(1, 2, 1, 3).clone()
    target = torch.tensor([[[1, 0, 255]]])
    loss = build_loss("segmentation", "dice")(logits, target)
    assert loss.item() == pytest.approx(1 - (0.6 + 5 / 7) / 2)
    combined = build_loss("segmentation", "ce_dice", alpha=0.25)(logits, target)
    ce = (-math.log(0.75) - math.log(0.25)) / 2
    assert combined.item() == pytest.approx(0.25 * ce + 0.75 * loss.item())


def test_unknown_loss_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="valid: .*ce_dice"):
        build_loss("segmentation", "lovasz_typo")


def test_focal_classification_hand_computed() -> None:
    # logits 0 -> p_t = 1/2 for both; (1 - p_t)^2 = 1/4; α_t = 0.25 (positive), 0.75 (negative).
    # mean = (0.25 + 0.75) / 2 · 1/4 · ln 2 = ln 2 / 8
    loss = build_loss("classification", "focal")(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx(math.log(2) / 8)


def test_asl_hand_computed() -> None:
    # p = 1/2. Positive (γ+ = 0): log 0.5. Negative: p_m = 0.5 - 0.05 = 0.45, 0.45^4 · log 0.55.
    loss = build_loss("classification", "asl")(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx(-(math.log(0.5) + 0.45**4 * math.log(0.55)) / 2)


def test_focal_segmentation_hand_computed() -> None:
    # p_t = 3/4 on the valid pixel: (1/4)^2 · -ln(3/4); the void pixel is skipped.
    logits = torch.tensor([0.0, math.log(3)]).view(1, 2, 1, 1).expand(1, 2, 1, 2).clone()
    loss = build_loss("segmentation", "focal")(logits, torch.tensor([[[1, 255]]]))
    assert loss.item() == pytest.approx(-(0.25**2) * math.log(0.75))


def test_lovasz_hand_computed() -> None:
    # Two class-0 pixels with p0 = 3/4 and 1/2: sorted errors (1/2, 1/4); the Jaccard
    # gradient for two foreground pixels is (1/2, 1/2) -> 1/2·1/2 + 1/4·1/2 = 3/8.
    # Class 1 is absent from the truth and does not count.
    logits = torch.tensor([[math.log(3), 0.0], [0.0, 0.0]]).T.reshape(1, 2, 1, 2)
    loss = build_loss("segmentation", "lovasz")(logits, torch.tensor([[[0, 0]]]))
    assert loss.item() == pytest.approx(3 / 8)


def two_pixel_logits() -> torch.Tensor:
    """(1, 3, 1, 3) logits (ln 2, 0, 0) at every pixel -> p = (1/2, 1/4, 1/4)."""
    return torch.tensor([math.log(2), 0.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 1, 3).clone()


def test_pixel_counts_per_image_skip_void_and_follow_indices() -> None:
    masks = np.array([[[0, 0], [1, 255]], [[2, 2], [2, 255]], [[255, 255], [255, 1]]], np.uint8)
    assert pixel_counts(masks, None, 3).tolist() == [[2, 1, 0], [0, 0, 3], [0, 1, 0]]
    # Chunk of 1 and a reordered subset: same rows, in the order asked.
    assert pixel_counts(masks, np.array([2, 0]), 3, chunk=1).tolist() == [[0, 1, 0], [2, 1, 0]]


def test_inverse_weights() -> None:
    # 1 / f = (2, 8, 8/3); Σ f w = 3 -> (2/3, 8/3, 8/9). Same from totals or per image.
    expected = [2 / 3, 8 / 3, 8 / 9]
    assert class_weights(PER_IMAGE, "inverse").tolist() == pytest.approx(expected, rel=1e-6)
    assert class_weights([8, 2, 6], "inverse").tolist() == pytest.approx(expected, rel=1e-6)


def test_median_frequency_weights_use_images_containing_the_class() -> None:
    # g = n_k / pixels of images with k: class 0 in A and B: 8/16; class 1 only in A: 2/8;
    # class 2 only in B: 6/8. median(g) = 1/2 -> w = (1, 2, 2/3); Σ f w = 1/2 + 1/4 + 1/4 = 1.
    weights = class_weights(PER_IMAGE, "median")
    assert weights.tolist() == pytest.approx([1.0, 2.0, 2 / 3], rel=1e-6)
    assert not torch.allclose(weights, class_weights(PER_IMAGE, "inverse"))


def test_enet_weights() -> None:
    f = [0.5, 0.125, 0.375]
    raw = [1 / math.log(1.02 + p) for p in f]
    scale = sum(p * w for p, w in zip(f, raw, strict=True))
    expected = [w / scale for w in raw]
    assert class_weights(PER_IMAGE, "enet").tolist() == pytest.approx(expected, rel=1e-6)
    c3 = [1 / math.log(3 + p) for p in f]  # another c changes the weights
    scale3 = sum(p * w for p, w in zip(f, c3, strict=True))
    assert class_weights(PER_IMAGE, "enet", c=3).tolist() == pytest.approx(
        [w / scale3 for w in c3], rel=1e-6)


def test_absent_class_gets_the_largest_weight() -> None:
    # f = (3/4, 1/4, 0): inverse (4/3, 4, ·) -> the absent class takes 4; Σ f w = 2.
    assert class_weights([3, 1, 0], "inverse").tolist() == pytest.approx([2 / 3, 2, 2])


def test_class_weight_errors() -> None:
    with pytest.raises(DataError, match="no labelled pixel"):
        class_weights([0, 0, 0])
    with pytest.raises(ConfigError, match="valid: enet, inverse, median"):
        class_weights([1, 1], "sqrt")


def test_wce_hand_computed_ignores_void() -> None:
    # Pixels: class 0 (p = 1/2), class 1 (p = 1/4), void. Median weights (1, 2, 2/3):
    # (1 · ln 2 + 2 · ln 4) / (1 + 2) = 5 ln 2 / 3.
    loss = build_loss("segmentation", "wce", class_counts=PER_IMAGE)
    value = loss(two_pixel_logits(), torch.tensor([[[0, 1, 255]]]))
    assert value.item() == pytest.approx(5 * math.log(2) / 3, rel=1e-6)
    inverse = build_loss("segmentation", "wce", class_counts=PER_IMAGE, weighting="inverse")
    # Inverse (2/3, 8/3): (2/3 ln 2 + 8/3 · 2 ln 2) / (10/3) = 1.8 ln 2.
    assert inverse(two_pixel_logits(), torch.tensor([[[0, 1, 255]]])).item() == pytest.approx(
        1.8 * math.log(2), rel=1e-6)


def test_wce_needs_counts_that_match_the_classes() -> None:
    with pytest.raises(ConfigError, match="class pixel counts"):
        build_loss("segmentation", "wce")
    with pytest.raises(ConfigError, match="2 class weights but the model outputs 3"):
        build_loss("segmentation", "wce", class_counts=[1, 1])(two_pixel_logits(),
                                                                torch.zeros(1, 1, 3).long())


def test_aux_output_adds_weighted_aux_loss() -> None:
    # out: uniform over 2 classes -> ln 2; aux: (0, ln 3) with truth 1 -> -ln 3/4.
    out = torch.zeros(1, 2, 1, 1)
    aux = torch.tensor([0.0, math.log(3)]).view(1, 2, 1, 1)
    target = torch.tensor([[[1]]])
    default = build_loss("segmentation", "ce")({"out": out, "aux": aux}, target)
    assert default.item() == pytest.approx(math.log(2) - 0.5 * math.log(0.75))
    custom = build_loss("segmentation", "ce", aux_weight=0.25)({"out": out, "aux": aux}, target)
    assert custom.item() == pytest.approx(math.log(2) - 0.25 * math.log(0.75))
    assert build_loss("segmentation", "ce")({"out": out}, target).item() == pytest.approx(
        math.log(2))


def test_focal_classification_parameters() -> None:
    # γ = 0 and α disabled (< 0): plain BCE, ln 2 at logit 0.
    plain = build_loss("classification", "focal", gamma=0.0, alpha=-1.0)
    assert plain(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]])).item() == pytest.approx(
        math.log(2))
    # Confident positive, logit ln 3 -> p = 3/4: α 0.25 · (1/4)^2 · -ln 3/4.
    loss = build_loss("classification", "focal")(torch.tensor([[math.log(3)]]),
                                                 torch.tensor([[1.0]]))
    assert loss.item() == pytest.approx(-0.25 / 16 * math.log(0.75))


def test_asl_parameters() -> None:
    # γ+ = 1, no clip, γ- = 4, p = 3/4 for both labels:
    # positive -(1/4) ln 3/4, negative -(3/4)^4 ln 1/4; mean over the two labels.
    loss = build_loss("classification", "asl", gamma_pos=1.0, clip=0.0)
    value = loss(torch.full((1, 2), math.log(3)), torch.tensor([[1.0, 0.0]]))
    expected = -(0.25 * math.log(0.75) + 0.75**4 * math.log(0.25)) / 2
    assert value.item() == pytest.approx(expected)
    # A clip above p removes the negative term entirely.
    clipped = build_loss("classification", "asl", clip=0.8)(torch.full((1, 1), math.log(3)),
                                                           torch.tensor([[0.0]]))
    assert clipped.item() == pytest.approx(0.0, abs=1e-7)


def test_segmentation_focal_with_gamma_zero_is_ce() -> None:
    # p = (1/2, 1/4, 1/4): truths 0 and 2 -> (ln 2 + ln 4) / 2; void skipped.
    target = torch.tensor([[[0, 2, 255]]])
    focal = build_loss("segmentation", "focal", gamma=0.0)(two_pixel_logits(), target)
    assert focal.item() == pytest.approx(1.5 * math.log(2))


def test_dice_of_a_confident_correct_prediction_is_zero() -> None:
    # Logits ±50: one-hot probabilities, intersection = |P| = |T| per class -> Dice 1, loss 0.
    target = torch.tensor([[[0, 1], [1, 255]]])
    logits = torch.stack([(target == c).float() * 100 - 50 for c in range(2)], dim=1)
    assert build_loss("segmentation", "dice")(logits, target).item() == pytest.approx(0, abs=1e-6)


def test_lovasz_two_classes_with_void() -> None:
    # Pixels: truth 0 with p0 = 3/4, truth 1 with p0 = 1/2, and a void pixel.
    # Class 0: errors (1/4, 1/2), sorted (1/2 [bg], 1/4 [fg]), Jaccard grad (1/2, 1/2) -> 3/8.
    # Class 1: errors (1/4, 1/2), sorted (1/2 [fg], 1/4 [bg]), grad (1, 0) -> 1/2. Mean 7/16.
    p0 = torch.tensor([0.75, 0.5, 0.9])
    logits = torch.stack([p0.log(), (1 - p0).log()]).view(1, 2, 1, 3)
    loss = build_loss("segmentation", "lovasz")(logits, torch.tensor([[[0, 1, 255]]]))
    assert loss.item() == pytest.approx(7 / 16)


def test_lovasz_all_void_is_zero_with_gradient() -> None:
    logits = torch.randn(1, 2, 2, 2, requires_grad=True)
    loss = build_loss("segmentation", "lovasz")(logits, torch.full((1, 2, 2), 255))
    loss.backward()
    assert loss.item() == 0 and (logits.grad == 0).all()
