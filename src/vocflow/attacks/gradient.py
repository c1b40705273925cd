"""Gradient attacks for any task: FGSM and PGD under an L∞ or an L2 bound, in pixel space.

Images ``x`` are (B, 3, H, W) floats in [0, 255]. For the L∞ norm ε bounds every pixel value's
change; for L2, ε bounds the root-mean-square change, i.e. ‖δ‖₂ ≤ ε·√D with D = 3·H·W, so the
same ε list means comparable budgets for both norms (the L2 ball of radius ε·√D circumscribes
the L∞ ball of ε). Every iterate is projected on the ball and clipped to [0, 255]; clipping only
shrinks |δ| element-wise, so it never breaks the bound.

References: FGSM, Goodfellow et al. 2015 (arXiv:1412.6572); PGD with random start, Madry et
al. 2018 (arXiv:1706.06083).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from vocflow.attacks.objectives import MAX_PIXEL
from vocflow.errors import ConfigError

NORMS = ("linf", "l2")
Objective = Callable[[torch.Tensor], torch.Tensor]  # logits -> (B,) loss to ascend


def radius(norm: str, eps: float, x: torch.Tensor) -> float:
    """The ball radius of budget ``eps`` for images shaped like ``x`` (B, 3, H, W)."""
    if norm not in NORMS:
        raise ConfigError(f"unknown attack norm '{norm}'; valid: {', '.join(NORMS)}")
    return float(eps) if norm == "linf" else float(eps) * x[0].numel() ** 0.5


def _l2(delta: torch.Tensor) -> torch.Tensor:
    """Per-image L2 norm, shaped (B, 1, 1, 1) for broadcasting."""
    return delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)


def project(x: torch.Tensor, x_adv: torch.Tensor, norm: str, r: float) -> torch.Tensor:
    """Nearest point of the ``norm`` ball of radius ``r`` around ``x``, clipped to [0, 255]."""
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-r, r)
    else:
        delta = delta * (r / _l2(delta).clamp_min(1e-12)).clamp(max=1.0)
    return (x + delta).clamp(0.0, MAX_PIXEL)


def steepest_step(grad: torch.Tensor, norm: str, size: float) -> torch.Tensor:
    """The step of length ``size`` (in ``norm``) that most increases a linearised loss."""
    if norm == "linf":
        return size * grad.sign()
    return size * grad / _l2(grad).clamp_min(1e-12)


def input_gradient(model: nn.Module, x: torch.Tensor, objective: Objective) -> torch.Tensor:
    """d(sum of per-image objective)/dx: the sum keeps images independent of each other."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(model(x)).sum(), x)
    return grad


def random_start(x: torch.Tensor, norm: str, r: float, generator: torch.Generator) -> torch.Tensor:
    """A uniform point of the L∞ cube, or a random direction at a uniform radius of the L2 ball."""
    if norm == "linf":
        noise = (torch.rand(x.shape, generator=generator) * 2 - 1) * r
    else:
        noise = torch.randn(x.shape, generator=generator)
        scale = torch.rand((len(x), 1, 1, 1), generator=generator) * r
        noise = noise / _l2(noise).clamp_min(1e-12) * scale
    return project(x, x + noise.to(x.device), norm, r)


class FGSM:
    """One steepest step of length ε: sign(∇) for L∞ (FGSM), ∇/‖∇‖ for L2 (FGM)."""

    trains = False

    def __init__(self, norm: str = "linf") -> None:
        radius(norm, 1.0, torch.zeros(1, 1))  # validates the norm name
        self.norm = norm

    def __call__(self, model: nn.Module, x: torch.Tensor, objective: Objective,
                 eps: float) -> torch.Tensor:
        r = radius(self.norm, eps, x)
        grad = input_gradient(model, x, objective)
        return project(x, x + steepest_step(grad, self.norm, r), self.norm, r).detach()


class PGD:
    """``steps`` projected steepest steps of ``step_size`` · radius, from a random start.

    Returns each image's iterate with the highest objective seen (the last step can overshoot).
    """

    trains = False

    def __init__(self, norm: str = "linf", steps: int = 10, step_size: float = 0.25,
                 random_start: bool = True, seed: int = 0) -> None:
        radius(norm, 1.0, torch.zeros(1, 1))
        if steps < 1 or step_size <= 0:
            raise ConfigError(f"PGD needs steps >= 1 and step_size > 0 (got {steps}, "
                              f"{step_size}); fix attacks.pgd in config/config.yaml")
        self.norm, self.steps, self.step_size = norm, steps, step_size
        self.random_start, self.seed = random_start, seed

    def __call__(self, model: nn.Module, x: torch.Tensor, objective: Objective,
                 eps: float) -> torch.Tensor:
        r = radius(self.norm, eps, x)
        generator = torch.Generator().manual_seed(self.seed)
        x_adv = random_start(x, self.norm, r, generator) if self.random_start else x.clone()
        best, best_value = x_adv.clone(), torch.full((len(x),), -torch.inf, device=x.device)
        for _ in range(self.steps):
            x_adv = x_adv.detach().requires_grad_(True)
            value = objective(model(x_adv))
            (grad,) = torch.autograd.grad(value.sum(), x_adv)
            best, best_value = _keep_best(best, best_value, x_adv.detach(), value.detach())
            x_adv = project(x, x_adv.detach() + steepest_step(grad, self.norm,
                                                              self.step_size * r), self.norm, r)
        with torch.no_grad():
            best, _ = _keep_best(best, best_value, x_adv, objective(model(x_adv)))
        return best.detach()


def _keep_best(best: torch.Tensor, best_value: torch.Tensor, x_adv: torch.Tensor,
               value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    better = value > best_value
    mask = better.view(-1, 1, 1, 1)
    return torch.where(mask, x_adv, best), torch.where(better, value, best_value)
