"""DenseCRF sharding: S shards in S parallel processes vs one process over every image.

The work is the post-processing a shard job does per image (``vocflow.crf.segment``: upsample
the stored 21-class probabilities, DenseCRF, thresholds) on VOC-sized images, dealt with
``vocflow.crf.shard_positions``. Target: wall(S shards on S cores) <= 1.2 x serial / S.
Run: .venv/bin/python bench/crf.py [S]   (S defaults to min(4, cores))
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time

import numpy as np
import torch

from vocflow.crf import CrfParams, segment, shard_positions

N, K, S_IN, H, W = 32, 21, 64, 240, 320
PARAMS = CrfParams(sxy=80, srgb=13, compat=10, iterations=5)


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (N, H // 16, W // 16, 3)).repeat(16, 1).repeat(16, 2)
    logits = torch.from_numpy(rng.normal(0, 2, (N, K, S_IN, S_IN)).astype(np.float32))
    q = (logits.softmax(dim=1) * 255).round().to(torch.uint8).numpy()
    return images.astype(np.uint8), q, np.full(K, 0.3)


IMAGES, PROBS, THRESHOLDS = data()


def run_shard(args: tuple[int, int]) -> tuple[int, float]:
    """Process one shard; returns (images, CPU seconds of this process)."""
    shards, shard = args
    torch.set_num_threads(1)
    start = time.process_time()
    for i in shard_positions(N, shards, shard):
        segment(IMAGES[i], PROBS[i], 255, THRESHOLDS, PARAMS)
    return len(shard_positions(N, shards, shard)), time.process_time() - start


def main() -> None:
    shards = int(sys.argv[1]) if len(sys.argv) > 1 else min(4, os.cpu_count() or 1)
    ctx = mp.get_context("fork")  # the children share IMAGES/PROBS without pickling them
    with ctx.Pool(1) as pool:  # the serial run in a child too, so both pay the same start-up
        start = time.perf_counter()
        [(_, serial_cpu)] = pool.map(run_shard, [(1, 0)])
        serial = time.perf_counter() - start
    with ctx.Pool(shards) as pool:
        start = time.perf_counter()
        done = pool.map(run_shard, [(shards, s) for s in range(shards)], chunksize=1)
        wall = time.perf_counter() - start
    assert sum(n for n, _ in done) == N
    ideal = serial / shards
    slowest = max(cpu for _, cpu in done)
    # On a shared machine the wall ratio also measures the neighbours; the CPU-time ratio is
    # what the wall ratio would be on S free cores (the slowest shard's work vs an even split).
    print(f"{N} images {H}x{W}, {K} classes, {shards} shards on {os.cpu_count()} cores "
          f"(load {os.getloadavg()[0]:.1f}): serial {serial:.2f} s, sharded wall {wall:.2f} s; "
          f"CPU: serial {serial_cpu:.2f} s, slowest shard {slowest:.2f} s, "
          f"ratio {slowest / (serial_cpu / shards):.2f} (target <= 1.2 x serial / S)")
    print(f"crf: ours {wall:.2f} s, baseline {ideal:.2f} s, ratio {wall / ideal:.2f}")


if __name__ == "__main__":
    main()
