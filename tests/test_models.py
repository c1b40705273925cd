"""Every registered model: shapes at odd sizes, gradients, aux heads, parameter errors."""

from __future__ import annotations

import pytest
import torch

from vocflow.errors import ConfigError
from vocflow.losses import build_loss
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




















