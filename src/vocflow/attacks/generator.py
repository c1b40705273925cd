"""The assignment's "CNN to perturb": a learned map image -> bounded perturbation.

``PerturbationNet`` is a small encoder-decoder whose output passes through tanh and is scaled by
ε, so ‖δ‖∞ ≤ ε by construction; ``UniversalPerturbation`` is one learned (3, H, W) pattern
ε·tanh(p) added to every image (Moosavi-Dezfooli et al. 2017, arXiv:1610.08401). Both are
trained against the frozen attacked model (generative attacks as in Poursaeed et al. 2018,
arXiv:1712.02328): each step draws every image's ε from the configured list, so one trained
network serves every ε, and once trained it attacks a new image in one forward pass.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from vocflow.attacks.gradient import Objective
from vocflow.attacks.objectives import MAX_PIXEL, Goal
from vocflow.errors import ConfigError

log = logging.getLogger(__name__)
KINDS = ("image", "universal")


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.ReLU())


class PerturbationNet(nn.Module):
    """(B, 3, H, W) pixels in [0, 255] -> (B, 3, H, W) direction in (-1, 1) (tanh output).

    tanh(g(x) + p): an encoder-decoder g (two stride-2 stages down, two transposed convs up,
    a skip at full resolution) plus a learned pattern p (3, H, W) shared by all images. The
    shared pattern makes the image-dependent generator at least as strong as the universal one
    from the first steps (a from-scratch g alone settles on a flat colour shift in the short
    CPU trainings of the default config); g adds the image-specific part. Decoder features are
    resized to the input when H or W is not divisible by 4.
    """

    def __init__(self, size: tuple[int, int], width: int = 16) -> None:
        super().__init__()
        self.stem = _block(3, width)
        self.down = nn.Sequential(_block(width, 2 * width, 2), _block(2 * width, 4 * width, 2))
        self.up = nn.Sequential(nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2), nn.ReLU(),
                                nn.ConvTranspose2d(2 * width, width, 2, stride=2), nn.ReLU())
        self.head = nn.Conv2d(2 * width, 3, 3, padding=1)
        self.pattern = nn.Parameter(torch.zeros(3, *size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.stem(x / (MAX_PIXEL / 2) - 1.0)
        h = self.up(self.down(skip))
        if h.shape[-2:] != skip.shape[-2:]:
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return torch.tanh(self.head(torch.cat([skip, h], dim=1)) + self.pattern)


class UniversalPerturbation(nn.Module):
    """One learned pattern for every image: (B, 3, H, W) -> (B, 3, H, W) tanh(p), p (3, H, W)."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.pattern = nn.Parameter(torch.zeros(3, *size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.pattern).expand_as(x)


def perturb(net: nn.Module, x: torch.Tensor, eps: torch.Tensor | float) -> torch.Tensor:
    """x + ε·net(x) clipped to [0, 255]; ``eps`` a float or per-image (B, 1, 1, 1)."""
    return (x + eps * net(x)).clamp(0.0, MAX_PIXEL)


class GeneratorAttack:
    """An attack that is trained first (``fit``) and then costs one forward pass per image."""

    trains = True
    norm = "linf"

    def __init__(self, kind: str = "image", steps: int = 100, batch_size: int = 8,
                 lr: float = 1e-3, universal_lr: float = 0.05, width: int = 16,
                 train_images: int = 64, seed: int = 0) -> None:
        if kind not in KINDS:
            raise ConfigError(f"unknown generator kind '{kind}'; valid: {', '.join(KINDS)}")
        self.kind, self.steps, self.batch_size, self.width = kind, steps, batch_size, width
        self.lr, self.universal_lr = lr, universal_lr
        self.train_images, self.seed = train_images, seed  # train_images: read by the job
        self.net: nn.Module | None = None

    def build(self, image_shape: tuple[int, ...]) -> nn.Module:
        torch.manual_seed(self.seed)
        size = (int(image_shape[-2]), int(image_shape[-1]))
        if self.kind == "universal":
            return UniversalPerturbation(size)
        return PerturbationNet(size, self.width)

    def optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        """Adam; the (3, H, W) pattern gets ``universal_lr``: one value per pixel needs larger
        steps than shared convolution weights."""
        pattern = [p for name, p in net.named_parameters() if name == "pattern"]
        rest = [p for name, p in net.named_parameters() if name != "pattern"]
        groups = [{"params": pattern, "lr": self.universal_lr}]
        return torch.optim.Adam(groups + ([{"params": rest, "lr": self.lr}] if rest else []))

    def fit(self, model: nn.Module, images: torch.Tensor, goal: Goal,
            epsilons: list[float]) -> list[float]:
        """Train on ``images`` (N, 3, H, W) in [0, 255]; returns the loss (to ascend) per step."""
        net = self.build(images.shape).to(images.device)
        optimizer = self.optimizer(net)
        gen = torch.Generator().manual_seed(self.seed)
        eps_values = torch.as_tensor(epsilons, dtype=images.dtype)
        history = []
        for _ in range(self.steps):
            idx = torch.randint(len(images), (min(self.batch_size, len(images)),), generator=gen)
            x = images[idx]
            eps = eps_values[torch.randint(len(eps_values), (len(x),), generator=gen)]
            with torch.no_grad():
                reference = goal.reference(model(x))
            value = goal.loss(model(perturb(net, x, eps.view(-1, 1, 1, 1).to(x.device))),
                              reference).mean()
            optimizer.zero_grad(set_to_none=True)
            (-value).backward()
            optimizer.step()
            history.append(value.item())
        self.net = net.eval()
        log.info("trained %s generator for %d steps: objective %.4f -> %.4f", self.kind,
                 self.steps, history[0] if history else float("nan"),
                 history[-1] if history else float("nan"))
        return history

    @torch.no_grad()
    def __call__(self, model: nn.Module, x: torch.Tensor, objective: Objective,
                 eps: float) -> torch.Tensor:
        if self.net is None:
            raise RuntimeError("call fit() before attacking with a generator")
        return perturb(self.net, x, float(eps))
