"""Segmentation threshold tuning: one histogram pass per class vs the naive per-threshold loop.

Both score the same 32 x 21 x 128^2 quantised probabilities (as OOF files store them) over a
100-step grid with the mean per-image Dice of each class, and must pick identical thresholds.
Single-threaded (numpy and OpenCV); the fast path is timed best of 5, the naive loop best of 2.
Run: .venv/bin/python bench/thresholds.py
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import torch

from vocflow.thresholds import make_grid, naive_segmentation_curves, pick_thresholds
from vocflow.thresholds import segmentation_curves as fast_curves

N, K, S = 32, 21, 128


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Blocky truth masks and softmax probabilities that lean towards them, quantised to uint8."""
    rng = np.random.default_rng(seed)
    masks = rng.integers(0, K, (N, S // 16, S // 16)).repeat(16, 1).repeat(16, 2)
    masks[rng.random(masks.shape) < 0.02] = 255
    logits = rng.normal(0, 1.5, (N, K, S, S)).astype(np.float32)
    np.put_along_axis(logits, np.minimum(masks, K - 1)[:, None], 3.0, axis=1)
    probs = torch.from_numpy(logits).softmax(dim=1)
    return (probs * 255).round().to(torch.uint8).numpy(), masks.astype(np.uint8)


def best_of(repeats: int, fn, *args, **kwargs) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    q, masks = data()
    grid = make_grid(0.0, 0.99, 100)
    for objective in ("dice", "image_dice"):
        fast_s, fast = best_of(5, fast_curves, q, masks, grid, objective=objective)
        naive_s, naive = best_of(2, naive_segmentation_curves, q, masks, grid,
                                 objective=objective)
        same = np.array_equal(pick_thresholds(fast, grid), pick_thresholds(naive, grid))
        print(f"{objective}: identical thresholds {same}, identical curves "
              f"{np.array_equal(fast, naive)}")
        if not same:
            raise SystemExit("the histogram path picked other thresholds than the naive loop")
    print(f"thresholds: ours {fast_s:.4f} s, baseline {naive_s:.3f} s, "
          f"ratio {naive_s / fast_s:.1f}")


if __name__ == "__main__":
    main()
