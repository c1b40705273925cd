"""Attack cost per image once trained: the perturbation generator (one forward pass) vs PGD.

Both attack the same model (the default config's UNet, base width 16, 3 levels, 21 classes,
random weights: the cost does not depend on them) on the same 64 px images, batch 8, one
thread. PGD uses the default config's settings except ``--steps`` (default 10, the usual
minimum). The generator's training cost is paid once per task × mode and is not counted here;
the summary table reports it as ``train_seconds``.

Usage: .venv/bin/python bench/attack_generator.py [--steps 10] [--batches 5] [--size 64]
The last line reads ``attack_generator: ours X ms/img, baseline Y ms/img, ratio R``.
"""

from __future__ import annotations

import argparse
import time

import torch

from vocflow.attacks.generator import GeneratorAttack
from vocflow.attacks.gradient import PGD
from vocflow.attacks.objectives import Goal, PixelModel
from vocflow.models import build_model


def ms_per_image(attack, model: PixelModel, x: torch.Tensor, goal: Goal, batches: int) -> float:
    with torch.no_grad():
        reference = goal.reference(model(x))
    attack(model, x, lambda z: goal.loss(z, reference), 8.0)  # warm-up
    start = time.perf_counter()
    for _ in range(batches):
        attack(model, x, lambda z: goal.loss(z, reference), 8.0)
    return 1000 * (time.perf_counter() - start) / (batches * len(x))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = PixelModel(build_model("segmentation", "unet", 21, base_width=16, levels=3))
    x = torch.rand(8, 3, args.size, args.size) * 255
    goal = Goal("segmentation", False)
    generator = GeneratorAttack("image", steps=1)
    generator.fit(model, x, goal, [8.0])
    ours = ms_per_image(generator, model, x, goal, args.batches)
    pgd = ms_per_image(PGD("linf", steps=args.steps), model, x, goal, args.batches)
    print(f"pgd {args.steps} steps: {pgd:.2f} ms/img; generator: {ours:.2f} ms/img")
    print(f"attack_generator: ours {ours:.2f} ms/img, baseline {pgd:.2f} ms/img, "
          f"ratio {pgd / ours:.1f}")


if __name__ == "__main__":
    main()
