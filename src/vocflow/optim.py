"""Optimisers, LR schedules and the two-phase transfer schedule, all chosen by config name.

Two phases (transfer models, ``freeze_epochs`` > 0 and a pretrained backbone):

1. epochs 1..F: the backbone is frozen (``requires_grad`` False, its BatchNorm layers in eval
   mode so their ImageNet statistics stay) and only the new head trains, at ``lr_head`` with a
   constant LR: a randomly initialised head first learns to use the features, so its large
   early gradients never reach the backbone;
2. epochs F+1..E: everything trains at the lower ``lr`` under ``schedule`` (spanning E - F);
   with ``unfreeze_blocks: N`` only the backbone's last N blocks (vocflow.models.backbone_blocks)
   join the head, the earlier ones stay frozen as in phase 1.

From scratch (no backbone) there is only phase 2. Each phase gets a fresh optimiser, so the
frozen phase's moments never leak into the backbone's updates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LRScheduler,
    ReduceLROnPlateau,
)

from vocflow.grid import TrainSettings
from vocflow.registry import Registry

OPTIMIZERS: Registry[torch.optim.Optimizer] = Registry("optimizer")
SCHEDULES: Registry[LRScheduler | ReduceLROnPlateau] = Registry("LR schedule")


@OPTIMIZERS.register("adamw")
def adamw(groups: list[dict[str, Any]], s: TrainSettings) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, weight_decay=s.weight_decay)


@OPTIMIZERS.register("sgd")
def sgd(groups: list[dict[str, Any]], s: TrainSettings) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, momentum=s.momentum, nesterov=s.nesterov and s.momentum > 0,
                           weight_decay=s.weight_decay)


# Schedules step once per epoch; ``epochs`` is the length of the phase they drive.
@SCHEDULES.register("cosine")
def cosine(opt: torch.optim.Optimizer, s: TrainSettings, epochs: int) -> LRScheduler:
    return CosineAnnealingLR(opt, T_max=max(1, epochs), eta_min=s.min_lr)


@SCHEDULES.register("poly")
def poly(opt: torch.optim.Optimizer, s: TrainSettings, epochs: int) -> LRScheduler:
    # DeepLab's "poly": lr · (1 - t / T) ** power, never reaching 0 within the phase.
    total = max(1, epochs)
    return LambdaLR(opt, lambda t: (1.0 - min(t, total - 1) / total) ** s.poly_power)


@SCHEDULES.register("exponential")
def exponential(opt: torch.optim.Optimizer, s: TrainSettings, epochs: int) -> LRScheduler:
    # The original study's decay: lr · gamma ** epoch.
    return ExponentialLR(opt, gamma=s.lr_gamma)


@SCHEDULES.register("plateau")
def plateau(opt: torch.optim.Optimizer, s: TrainSettings, epochs: int) -> ReduceLROnPlateau:
    # mode max: train.end_epoch hands it the selection metric or minus the loss (``watch``).
    return ReduceLROnPlateau(opt, mode="max", factor=s.lr_factor, patience=s.lr_patience,
                             min_lr=s.min_lr)


@SCHEDULES.register("constant")
def constant(opt: torch.optim.Optimizer, s: TrainSettings, epochs: int) -> LRScheduler:
    return LambdaLR(opt, lambda t: 1.0)


@dataclass
class Phase:
    """One phase of training: which parameters move, how, and which modules stay frozen."""

    number: int  # 1 = frozen backbone, 2 = everything
    optimizer: torch.optim.Optimizer
    scheduler: LRScheduler | ReduceLROnPlateau
    frozen: list[nn.Module]  # kept in eval mode by ``train_mode``

    def step(self, metric: float) -> None:
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(metric)
        else:
            self.scheduler.step()

    def lr(self) -> float:
        return float(self.optimizer.param_groups[-1]["lr"])  # the head's group


def freeze_epochs(s: TrainSettings, backbone: list[nn.Parameter]) -> int:
    """Epochs of phase 1: 0 without a pretrained backbone; all epochs = a linear probe."""
    return min(s.freeze_epochs, s.epochs) if backbone else 0


def trainable_backbone(s: TrainSettings, backbone: list[nn.Parameter],
                       blocks: list[nn.Module]) -> tuple[list[nn.Parameter], list[nn.Module]]:
    """(backbone parameters that train in phase 2, backbone modules that stay frozen): all and
    none, or with ``unfreeze_blocks: N`` those of the last N ``blocks`` and the earlier blocks."""
    if s.unfreeze_blocks is None or not backbone:
        return backbone, []
    n = min(max(s.unfreeze_blocks, 0), len(blocks))
    still = blocks[:len(blocks) - n]
    ids = {id(p) for b in blocks[len(blocks) - n:] for p in b.parameters()}
    return [p for p in backbone if id(p) in ids], still


def build_phase(number: int, s: TrainSettings, backbone: list[nn.Parameter],
                head: list[nn.Parameter], backbone_mods: list[nn.Module],
                blocks: list[nn.Module] | None = None) -> Phase:
    """Set ``requires_grad`` for phase ``number`` and build its optimiser and schedule."""
    frozen = number == 1
    moving, still = (([], list(backbone_mods)) if frozen
                     else trainable_backbone(s, backbone, list(blocks or [])))
    ids = {id(p) for p in moving}
    for p in backbone:
        p.requires_grad_(id(p) in ids)
    if frozen:
        lr_head = s.lr_head if s.lr_head is not None else 10 * s.lr
        groups = [{"params": head, "lr": lr_head}]
        optimizer = OPTIMIZERS.get(s.optimizer)(groups, s)
        return Phase(1, optimizer, constant(optimizer, s, 1), still)
    groups = [{"params": ps, "lr": s.lr} for ps in (moving, head) if ps]
    optimizer = OPTIMIZERS.get(s.optimizer)(groups, s)
    scheduler = SCHEDULES.get(s.schedule)(optimizer, s, s.epochs - freeze_epochs(s, backbone))
    return Phase(2, optimizer, scheduler, still)


def train_mode(model: nn.Module, phase: Phase) -> None:
    """model.train(), except the frozen modules (their BatchNorm statistics must not move)."""
    model.train()
    for module in phase.frozen:
        module.eval()
