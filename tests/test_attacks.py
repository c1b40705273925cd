"""Attacks on tiny models: norm bounds, pixel range, loss ascent, targets, generators, scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vocflow.attacks import ATTACKS, AttackSettings, build_attack
from vocflow.attacks.evaluate import psnr, ssim, success_rate
from vocflow.attacks.generator import GeneratorAttack
from vocflow.attacks.gradient import PGD, project, radius
from vocflow.attacks.objectives import (
    Goal,
    PixelModel,
    build_target,
    predict,
    task_loss,
    to_pixels,
)
from vocflow.attacks.registry import check_attacks
from vocflow.data.cache import load_cache
from vocflow.data.synthetic import VOC_CLASSES
from vocflow.errors import ConfigError
from vocflow.models import build_model

TASKS = ("classification", "segmentation")
TINY = {"classification": ("cnn", 20, {"widths": [4, 8], "dense": 8}),
        "segmentation": ("unet", 21, {"base_width": 4, "levels": 2})}
TARGETS = {"classification": "only:person", "segmentation": "erase:largest"}
GRADIENT = [name for name in ATTACKS.names() if name not in ("generator", "universal")]


# Tiny tensors: one intra-op thread (conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_model(task: str, seed: int = 0) -> PixelModel:
    torch.manual_seed(seed)
    arch, outputs, params = TINY[task]
    return PixelModel(build_model(task, arch, outputs, **params))


def images(n: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Random pixels including exact 0 and 255, so clipping is exercised."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, size, size), generator=gen).float()
    x[:, :, 0, 0], x[:, :, 0, 1] = 0.0, 255.0
    return x


def settings(task: str, method: str, **extra) -> AttackSettings:
    return AttackSettings(task=task, method=method, epsilons=[2.0, 8.0], target=TARGETS[task],
                          pgd={"steps": 3, "step_size": 0.5}, generator={"steps": 3},
                          **extra)


def goal(task: str, targeted: bool) -> Goal:
    target = build_target(task, TARGETS[task], VOC_CLASSES) if targeted else None
    return Goal(task, targeted, target)


def attack_once(task: str, method: str, targeted: bool, eps: float,
                x: torch.Tensor) -> torch.Tensor:
    model, g = tiny_model(task), goal(task, targeted)
    attack = build_attack(settings(task, method))
    if attack.trains:
        attack.fit(model, images(8, seed=1), g, [eps])
    with torch.no_grad():
        reference = g.reference(model(x))
    return attack(model, x, lambda logits: g.loss(logits, reference), eps)


# ----------------------------------------------------------------------------- bounds, range


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("method", ATTACKS.names())
@pytest.mark.parametrize("targeted", [False, True])
def test_attack_respects_norm_bound_and_pixel_range(task: str, method: str,
                                                    targeted: bool) -> None:
    x, eps = images(), 4.0
    x_adv = attack_once(task, method, targeted, eps, x)
    norm = build_attack(settings(task, method)).norm
    delta = (x_adv - x).flatten(1).double()
    assert x_adv.shape == x.shape and x_adv.min() >= 0 and x_adv.max() <= 255
    if norm == "linf":
        assert delta.abs().max() <= eps + 1e-4  # float32 rounding at 255 is ~3e-5
    else:
        assert (delta.norm(dim=1) <= radius("l2", eps, x) * (1 + 1e-5)).all()
    assert delta.abs().max() > 0  # the attack did perturb


@pytest.mark.parametrize("task", TASKS)
def test_fgsm_uses_the_whole_linf_budget_away_from_the_range_ends(task: str) -> None:
    x = images().clamp(10, 245)  # no pixel within ε of 0 or 255: nothing is clipped
    delta = attack_once(task, "fgsm", False, 4.0, x) - x
    moved = delta != 0  # sign(0) pixels (zero gradient) stay put
    assert moved.float().mean() > 0.5
    assert torch.allclose(delta[moved].abs(), torch.tensor(4.0), atol=1e-4)


def test_project_l2_scales_onto_the_ball_and_linf_clamps() -> None:
    def pixels(*values: float) -> torch.Tensor:  # (1, 1, 1, n)
        return torch.tensor(values).view(1, 1, 1, -1)

    x = torch.full((1, 1, 1, 2), 100.0)
    far = x + pixels(3.0, 4.0)  # ‖δ‖₂ = 5
    assert torch.allclose(project(x, far, "l2", 1.0) - x, pixels(0.6, 0.8))
    assert torch.allclose(project(x, far, "linf", 2.0) - x, pixels(2.0, 2.0))
    near = x + pixels(0.3, 0.4)
    assert torch.equal(project(x, near, "l2", 1.0), near)  # inside: unchanged
    top = torch.full((1, 1, 1, 2), 254.0)
    assert project(top, top + 5, "linf", 8.0).max() == 255.0  # clipped to the range


def test_radius_of_l2_is_rms_budget() -> None:
    x = torch.zeros(2, 3, 4, 4)
    assert radius("linf", 2.0, x) == 2.0
    assert radius("l2", 2.0, x) == pytest.approx(2.0 * math.sqrt(48))
    with pytest.raises(ConfigError, match="linf, l2"):
        radius("l1", 2.0, x)


# ----------------------------------------------------------------------------- loss ascent


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("method", GRADIENT)
@pytest.mark.parametrize("targeted", [False, True])
def test_attacks_move_the_loss_their_way(task: str, method: str, targeted: bool) -> None:
    """Untargeted: the loss against the clean prediction rises; targeted: the loss against the
    target falls."""
    model, g, x = tiny_model(task), goal(task, targeted), images()
    with torch.no_grad():
        reference = g.reference(model(x))
        before = task_loss(task, model(x), reference).mean()
    x_adv = attack_once(task, method, targeted, 8.0, x)
    with torch.no_grad():
        after = task_loss(task, model(x_adv), reference).mean()
    assert (after < before) if targeted else (after > before)


def trained_classifier(x: torch.Tensor, labels: np.ndarray) -> PixelModel:
    """A tiny CNN fitted to (x, labels) for 150 steps: accurate on its training images."""
    torch.manual_seed(0)
    net = build_model("classification", "cnn", labels.shape[1], widths=[8, 16], dense=16,
                      dropout=0.0)
    model, y = PixelModel(net), torch.from_numpy(labels.astype(np.float32))
    for p in net.parameters():  # PixelModel freezes the weights; unfreeze to train
        p.requires_grad_(True)
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(150):
        idx = torch.randint(len(x), (16,), generator=gen)
        loss = F.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return PixelModel(net)


def test_targeted_pgd_reaches_the_label_set_of_a_trained_classifier(tiny_data: dict) -> None:
    cache = load_cache(tiny_data["train"])
    x = to_pixels(cache.images)
    model = trained_classifier(x, cache.labels)
    g = goal("classification", True)  # only:person
    with torch.no_grad():
        clean = model(x)
        assert (predict("classification", clean).numpy() == cache.labels).mean() > 0.9
        target = g.reference(clean)
    x_adv = PGD("linf", steps=20, step_size=0.1)(model, x, lambda z: g.loss(z, target), 8.0)
    with torch.no_grad():
        adv = predict("classification", model(x_adv))
    already = (predict("classification", clean) == target).all(dim=1).float().mean()
    reached = (adv == target).all(dim=1).float().mean()
    assert already < 0.5 and reached >= 0.8


# ----------------------------------------------------------------------------- generators


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("kind", ["image", "universal"])
def test_generator_training_lowers_the_target_loss(task: str, kind: str) -> None:
    model, g, x, eps = tiny_model(task), goal(task, True), images(8, seed=2), 8.0
    with torch.no_grad():
        target = g.reference(model(x))

    def target_loss(attack: GeneratorAttack) -> float:
        with torch.no_grad():
            return float(task_loss(task, model(attack(model, x, None, eps)), target).mean())

    untrained = GeneratorAttack(kind, steps=0)
    untrained.fit(model, x, g, [eps])
    trained = GeneratorAttack(kind, steps=15, lr=3e-3, universal_lr=0.1)
    history = trained.fit(model, x, g, [eps])
    assert len(history) == 15
    assert target_loss(trained) < target_loss(untrained)


def test_generator_output_is_bounded_for_any_eps() -> None:
    model, g = tiny_model("segmentation"), goal("segmentation", False)
    attack = GeneratorAttack("image", steps=2)
    attack.fit(model, images(8), g, [1.0, 8.0])
    x = images(3, seed=5)
    for eps in (0.5, 3.0, 16.0):  # also ε never seen in training
        x_adv = attack(model, x, None, eps)
        assert (x_adv - x).abs().max() <= eps + 1e-4 and x_adv.min() >= 0 and x_adv.max() <= 255


def test_generator_must_be_fitted() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        GeneratorAttack("image")(tiny_model("classification"), images(), None, 2.0)
    with pytest.raises(ConfigError, match="image, universal"):
        GeneratorAttack("conditional")


# ----------------------------------------------------------------------------- targets


def test_classification_targets() -> None:
    names = ["cat", "dog", "person"]
    pred = torch.tensor([[1.0, 0, 0], [0, 0, 1]])
    assert build_target("classification", "only:person", names)(pred).tolist() == [
        [0, 0, 1], [0, 0, 1]]
    assert build_target("classification", "add:dog", names)(pred).tolist() == [
        [1, 1, 0], [0, 1, 1]]
    assert build_target("classification", "none", names)(pred).sum() == 0


def test_segmentation_targets() -> None:
    names = ["cat", "dog", "person"]  # labels 1, 2, 3
    pred = torch.tensor([[[1, 1, 2], [0, 1, 2]], [[0, 0, 0], [0, 0, 3]]])
    erase = build_target("segmentation", "erase:largest", names)(pred)
    assert erase.tolist() == [[[0, 0, 2], [0, 0, 2]], [[0, 0, 0], [0, 0, 0]]]
    paint = build_target("segmentation", "paint:dog:person", names)(pred)
    assert paint.tolist() == [[[1, 1, 3], [0, 1, 3]], [[0, 0, 0], [0, 0, 3]]]
    paint_largest = build_target("segmentation", "paint:largest:cat", names)(pred)
    assert paint_largest[1].tolist() == [[0, 0, 0], [0, 0, 1]]
    assert build_target("segmentation", "background", names)(pred).sum() == 0
    empty = torch.zeros(1, 2, 2, dtype=torch.long)  # nothing predicted: nothing to erase
    assert torch.equal(build_target("segmentation", "erase:largest", names)(empty), empty)


# A target rule that names an unknown class or has the wrong form, and what the error says.
BAD_TARGETS = [
    ("classification", "only:unicorn", "valid: cat, dog"),
    ("classification", "erase:cat", "valid forms: only:CLASS"),
    ("segmentation", "paint:cat", "valid forms: background"),
    ("segmentation", "erase:cat:dog", "valid forms"),
]


@pytest.mark.parametrize(("task", "spec", "message"), BAD_TARGETS)
def test_bad_targets_fail_with_valid_choices(task: str, spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_target(task, spec, ["cat", "dog"])


# ----------------------------------------------------------------------------- config


def attack_config(**attacks) -> dict:
    section = {"methods": ["fgsm", "pgd"], "epsilons": [2], "n_images": 2,
               "targets": TARGETS, **attacks}
    return {"seed": 0, "data": {"format": "synthetic", "class_names": list(VOC_CLASSES)},
            "attacks": section}


def test_unknown_attack_fails_with_the_valid_names() -> None:
    with pytest.raises(ConfigError, match="unknown attack 'pgd_l3'; valid: " +
                       ", ".join(ATTACKS.names())):
        check_attacks(attack_config(methods=["pgd", "pgd_l3"]))
    with pytest.raises(ConfigError, match="valid: " + ", ".join(ATTACKS.names())):
        build_attack(settings("classification", "deepfool"))


def test_check_attacks_lists_methods_and_checks_targets() -> None:
    assert check_attacks(attack_config()) == ["fgsm", "pgd"]
    assert check_attacks(attack_config(methods=[])) == []
    assert check_attacks({"data": {}}) == []  # no section: no attacks
    with pytest.raises(ConfigError, match="attack target class 'unicorn'"):
        check_attacks(attack_config(targets={**TARGETS, "classification": "only:unicorn"}))
    with pytest.raises(ConfigError, match="attacks.split"):
        check_attacks(attack_config(split="train"))
    # Untargeted only: no target needed.
    assert check_attacks(attack_config(targeted=[False], targets={})) == ["fgsm", "pgd"]


def test_bad_pgd_parameters_fail() -> None:
    with pytest.raises(ConfigError, match="steps >= 1"):
        build_attack(AttackSettings(task="classification", method="pgd", epsilons=[1.0],
                                    pgd={"steps": 0}))
    with pytest.raises(ConfigError, match="bad parameters"):
        build_attack(AttackSettings(task="classification", method="pgd", epsilons=[1.0],
                                    pgd={"stepz": 3}))


# ----------------------------------------------------------------------------- scores


def test_psnr_and_ssim_hand_values() -> None:
    x = torch.full((1, 3, 16, 16), 100.0, dtype=torch.float64)
    assert float(psnr(x, x + 1)) == pytest.approx(20 * math.log10(255), abs=1e-9)  # MSE 1
    assert math.isinf(float(psnr(x, x)))
    noisy = x + torch.randn(x.shape, generator=torch.Generator().manual_seed(0),
                            dtype=torch.float64) * 20
    assert float(ssim(x, x)) == pytest.approx(1.0)
    assert float(ssim(x, noisy)) < 0.5
    # A constant shift keeps structure and contrast, only the luminance term drops.
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    assert float(ssim(x, x + 10)) == pytest.approx(expected)


def test_success_rates_hand_cases() -> None:
    clean = np.array([[1, 0], [0, 1], [0, 0]])
    adv = np.array([[1, 0], [1, 1], [0, 1]])
    target = np.array([[0, 1], [1, 1], [0, 1]])
    assert success_rate("classification", False, clean, adv) == pytest.approx(2 / 3)
    assert success_rate("classification", True, clean, adv, target) == pytest.approx(2 / 3)
    clean_m = np.array([[[1, 1], [0, 0]]])
    adv_m = np.array([[[0, 1], [0, 0]]])
    target_m = np.array([[[0, 0], [0, 0]]])  # erase: two pixels change, one reached
    assert success_rate("segmentation", False, clean_m, adv_m) == pytest.approx(0.25)
    assert success_rate("segmentation", True, clean_m, adv_m, target_m) == pytest.approx(0.5)
    assert math.isnan(success_rate("segmentation", True, clean_m, adv_m, clean_m))
