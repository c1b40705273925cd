"""Training throughput (images/s) of every registry model: forward, loss, backward, AdamW step.

Random inputs at --size² px, batch --batch, pretrained=False (the weights do not change the
cost), so the figures measure the model alone, not the data loader. Defaults: 128², batch 8,
one CPU thread — what a user needs to size a CPU job. On a GPU: --device cuda [--amp bf16]
[--channels-last].

    .venv/bin/python bench/models.py [--models a,b] [--size 128] [--batch 8] [--threads 1]

The last line compares the fastest transfer classifier with the from-scratch CNN, in images per
CPU-second (stable on a shared machine, where wall-clock rates fall with the load).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import torch

from vocflow.losses import build_loss
from vocflow.models import CLASSIFIERS, SEGMENTERS, build_model
from vocflow.models.weights import has_weights

TASKS = {"classification": (CLASSIFIERS, 20, "bce"), "segmentation": (SEGMENTERS, 21, "ce")}


def step_fn(task: str, arch: str, args: argparse.Namespace):
    registry, classes, loss_name = TASKS[task]
    device = torch.device(args.device)
    fmt = torch.channels_last if args.channels_last else torch.preserve_format
    model = build_model(task, arch, classes).to(device, memory_format=fmt).train()
    loss_fn = build_loss(task, loss_name)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device).to(memory_format=fmt)
    if task == "classification":
        y = torch.randint(0, 2, (args.batch, classes), device=device).float()
    else:
        y = torch.randint(0, classes, (args.batch, args.size, args.size), device=device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
    scaler = torch.amp.GradScaler(enabled=args.amp == "fp16")

    def step() -> None:
        autocast = (torch.autocast(device.type, dtype=dtype) if dtype
                    else contextlib.nullcontext())
        with autocast:
            out = model(x)
        if isinstance(out, dict):
            out = {k: v.float() for k, v in out.items()}
        else:
            out = out.float()
        loss = loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


def throughput(task: str, arch: str, args: argparse.Namespace) -> tuple[float, float]:
    """(images per wall second, images per CPU second of this process).

    On a shared machine the wall figure drops with the load; with one thread the CPU-second
    figure is what a dedicated core would give.
    """
    step = step_fn(task, arch, args)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    for _ in range(args.warmup):
        step()
    sync()
    steps, start, cpu = 0, time.perf_counter(), time.process_time()
    while steps < args.min_steps or time.perf_counter() - start < args.min_seconds:
        step()
        sync()
        steps += 1
    images = steps * args.batch
    return images / (time.perf_counter() - start), images / (time.process_time() - cpu)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="", help="comma-separated registry names (default all)")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--min-steps", type=int, default=2)
    p.add_argument("--min-seconds", type=float, default=3.0)
    return p.parse_args()


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    wanted = set(filter(None, args.models.split(",")))
    print(f"# training images/s at {args.size}x{args.size}, batch {args.batch}, device "
          f"{args.device}, {args.threads} thread(s), amp {args.amp}, channels_last "
          f"{args.channels_last}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'task':<15}{'model':<30}{'params (M)':>11}{'img/s':>10}{'img/CPU-s':>11}")
    rates: dict[str, float] = {}
    for task, (registry, classes, _) in TASKS.items():
        for arch in registry.names():
            if wanted and arch not in wanted:
                continue
            params = sum(p.numel() for p in build_model(task, arch, classes).parameters())
            rate, per_cpu = throughput(task, arch, args)
            rates[f"{task}/{arch}"] = per_cpu  # the summary uses the load-independent figure
            print(f"{task:<15}{arch:<30}{params / 1e6:>11.1f}{rate:>10.1f}{per_cpu:>11.1f}",
                  flush=True)
    transfer = {k: v for k, v in rates.items()
                if k.startswith("classification/") and has_weights(k.split("/")[1])}
    baseline = rates.get("classification/cnn")
    if transfer and baseline:
        best = max(transfer, key=transfer.get)
        print(f"# ours = fastest transfer classifier ({best.split('/')[1]}), baseline = cnn; "
              "images per CPU-second")
        print(f"models: ours {transfer[best]:.1f} img/CPU-s, baseline {baseline:.1f} img/CPU-s, "
              f"ratio {transfer[best] / baseline:.2f}")


if __name__ == "__main__":
    main()
