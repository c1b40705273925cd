"""Every registered model and loss: shapes, gradients, hand-computed values, void handling."""

from __future__ import annotations

import math

import pytest
import torch

from vocflow.errors import ConfigError
from vocflow.losses import CLASSIFICATION_LOSSES, SEGMENTATION_LOSSES, build_loss
from vocflow.models import CLASSIFIERS, SEGMENTERS, build_model

TINY = {"cnn": {"widths": [4, 8], "dense": 8}, "unet": {"base_width": 4, "levels": 2}}


# Tiny tensors: one intra-op thread (conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("arch", CLASSIFIERS.names())
def test_classifier_forward_backward(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model("classification", arch, 5, **TINY.get(arch, {}))
    logits = model(torch.randn(2, 3, 32, 40))
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


# Odd sizes (30 x 44) check the resize back to the input for every output stride.
@pytest.mark.parametrize("arch", SEGMENTERS.names())
@pytest.mark.parametrize("size", [(32, 32), (30, 44)])
def test_segmenter_forward_backward(arch: str, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = build_model("segmentation", arch, 4, **TINY.get(arch, {}))
    out = model(torch.randn(2, 3, *size))
    outputs = out.values() if isinstance(out, dict) else [out]
    assert all(o.shape == (2, 4, *size) and torch.isfinite(o).all() for o in outputs)
    build_loss("segmentation", "ce")(out, torch.randint(0, 4, (2, *size))).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, *size))
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 4, *size)


@pytest.mark.parametrize("arch", ["deeplabv3_resnet50", "deeplabv3_mobilenet_v3_large",
                                  "fcn_resnet50"])
def test_aux_head_only_in_train_mode_and_switchable(arch: str) -> None:
    x = torch.randn(2, 3, 32, 32)
    out = build_model("segmentation", arch, 3).train()(x)
    assert set(out) == {"out", "aux"} and not torch.equal(out["out"], out["aux"])
    assert isinstance(build_model("segmentation", arch, 3, aux=False).train()(x), torch.Tensor)


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="valid: .*cnn"):
        build_model("classification", "resnet9000", 3)
    with pytest.raises(ConfigError, match="valid: .*unet"):
        build_model("segmentation", "nope", 3)


def test_bad_model_parameter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="bad parameters"):
        build_model("classification", "cnn", 3, wdths=[4])


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
