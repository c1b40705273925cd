"""Optimisers and per-epoch LR schedules by config name, computed by hand."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from vocflow.errors import ConfigError
from vocflow.grid import TrainSettings
from vocflow.optim import OPTIMIZERS, SCHEDULES, build_phase

BASE = dict(task="classification", model="tiny", arch="cnn", loss="bce", epochs=3,
            batch_size=8, lr=1e-3, augment="none", model_params={"widths": [4, 8], "dense": 8})


def lrs(schedule: str, metrics: list[float], **kw: Any) -> list[float]:
    s = TrainSettings(**{**BASE, "lr": 1.0, "epochs": 4, "schedule": schedule, **kw})
    phase = build_phase(2, s, [], [nn.Parameter(torch.zeros(1))], [])
    out = []
    for value in metrics:
        out.append(phase.lr())
        phase.optimizer.step()  # an epoch's updates come before its schedule step
        phase.step(value)
    return out


@pytest.mark.parametrize("schedule, expected", [
    ("constant", [1.0, 1.0, 1.0, 1.0]),
    ("cosine", [1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2]),
    ("poly", [1.0, 0.75**2, 0.5**2, 0.25**2]),
    # metric 0.5 then stalls: patience 1 -> halved after the 2nd stalled epoch
    ("plateau", [1.0, 1.0, 1.0, 0.5]),
    ("exponential", [1.0, 0.8, 0.64, 0.512]),  # lr · gamma ** epoch, gamma 0.8
])
def test_schedules_by_hand(schedule: str, expected: list[float]) -> None:
    assert set(SCHEDULES.names()) == {"constant", "cosine", "poly", "plateau", "exponential"}
    got = lrs(schedule, [0.5, 0.5, 0.5, 0.5], poly_power=2.0, lr_patience=1, lr_factor=0.5,
              lr_gamma=0.8)
    assert got == pytest.approx(expected)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_optimizers_from_config(name: str) -> None:
    s = TrainSettings(**{**BASE, "optimizer": name, "momentum": 0.8, "weight_decay": 0.01})
    backbone, head = [nn.Parameter(torch.zeros(2))], [nn.Parameter(torch.zeros(1))]
    phase = build_phase(2, s, backbone, head, [])
    opt = phase.optimizer
    assert type(opt).__name__ == {"adamw": "AdamW", "sgd": "SGD"}[name]
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-3]
    assert all(g["weight_decay"] == 0.01 for g in opt.param_groups)
    if name == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.8 and opt.param_groups[0]["nesterov"]
    frozen = build_phase(1, s, backbone, head, [])
    assert [g["lr"] for g in frozen.optimizer.param_groups] == [1e-2]  # lr_head None: 10 lr
    assert not backbone[0].requires_grad


def test_unknown_optimizer_lists_valid_names() -> None:
    s = TrainSettings(**{**BASE, "optimizer": "adam9"})
    with pytest.raises(ConfigError, match="unknown optimizer 'adam9'; valid: adamw, sgd"):
        build_phase(2, s, [], [nn.Parameter(torch.zeros(1))], [])


def test_unfreeze_blocks_trains_only_the_last_blocks_after_the_frozen_phase() -> None:
    blocks = [nn.BatchNorm1d(2) for _ in range(4)]
    backbone = [p for b in blocks for p in b.parameters()]
    head = [nn.Parameter(torch.zeros(1))]
    s = TrainSettings(**{**BASE, "freeze_epochs": 1, "unfreeze_blocks": 1})
    frozen = build_phase(1, s, backbone, head, blocks, blocks)
    assert not any(p.requires_grad for p in backbone) and frozen.frozen == blocks
    phase = build_phase(2, s, backbone, head, blocks, blocks)
    moving = [p.requires_grad for b in blocks for p in b.parameters()]
    assert moving == [False] * 6 + [True] * 2  # weight and bias of the last block only
    assert phase.frozen == blocks[:3]  # kept in eval mode: their statistics stay
    assert [len(g["params"]) for g in phase.optimizer.param_groups] == [2, 1]
    everything = build_phase(2, TrainSettings(**{**BASE, "freeze_epochs": 1}), backbone, head,
                             blocks, blocks)
    assert all(p.requires_grad for p in backbone) and everything.frozen == []
