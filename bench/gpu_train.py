"""GPU training throughput through vocflow's own loop, and whether the data loader keeps up.

Ours: ``vocflow.train.train_cell`` on a synthetic set cached at --size px — memory-mapped
cache -> ``CacheBatches`` in loader workers (the job's CPUs minus one) with the augmentation
preset -> pinned memory -> ``normalize_batch`` on the device -> AMP (bf16) + channels_last.
Its training images/s come from the per-epoch ``seconds`` of metrics.csv (epochs after the
first, which pays cuDNN autotuning and worker start-up).
Baseline: the same model alone, forward + loss + backward + AdamW on a random batch already
on the device (bench/models.py's step, same AMP and memory format) — the most the GPU can
do. A ratio near 1 means the GPU, not the loader, sets the pace.

Also printed: the training loader alone (same workers and preset, no model) and the model
alone in fp32 without channels_last (what AMP + channels_last gain).

    python bench/gpu_train.py [--model deeplabv3_resnet50] [--size 512] [--batch 16]
                              [--images 640] [--epochs 3] [--augment full] [--threads N]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vocflow.data.cache import load_cache
from vocflow.data.folds import read_folds
from vocflow.data.ingest import ingest
from vocflow.data.stratify import write_folds
from vocflow.data.synthetic import VOC_CLASSES, make_synthetic
from vocflow.grid import TrainSettings
from vocflow.train import build_loaders, split_indices, train_cell

HERE = Path(__file__).resolve().parent
DEVICE = "cuda"  # a module constant so that a CPU smoke run can swap it


def model_only(args: argparse.Namespace, amp: str, channels_last: bool) -> float:
    """Images/s of bench/models.py's training step on a random on-device batch."""
    spec = importlib.util.spec_from_file_location("bench_models", HERE / "models.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    ns = argparse.Namespace(device=DEVICE, amp=amp, channels_last=channels_last,
                            batch=args.batch, size=args.size, warmup=5, min_steps=10,
                            min_seconds=args.seconds)
    return bench.throughput("segmentation", args.model, ns)[0]


def make_data(root: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """A synthetic training set cached at --size px and its folds (one in --folds validates)."""
    make_synthetic(root / "synthetic", n_train=args.images, n_test=1, seed=0,
                   min_side=args.size // 2, max_side=args.size)
    cache = root / "cache"
    ingest("synthetic", root / "synthetic", "train", cache, image_size=args.size,
           class_names=VOC_CLASSES)
    data = load_cache(cache)
    write_folds(data.ids, data.labels, args.folds, 0, root / "folds.csv")
    return cache, root / "folds.csv"


def settings(args: argparse.Namespace) -> TrainSettings:
    return TrainSettings(task="segmentation", model=args.model, arch=args.model, loss="ce",
                         model_params={"pretrained": False}, epochs=args.epochs,
                         batch_size=args.batch, lr=1e-4, augment=args.augment)


def loader_only(cache_dir: Path, folds_csv: Path, args: argparse.Namespace) -> float:
    """Images/s of the training loader alone (second pass: workers already started)."""
    s, data = settings(args), load_cache(cache_dir)
    idx = split_indices(read_folds(folds_csv, data.ids), 0, cache_dir)
    sampler, loader, _ = build_loaders(0, s, data, idx, args.size, args.threads - 1, True)
    rate = 0.0
    for epoch in (1, 2):
        sampler.set_epoch(epoch)
        start, n = time.perf_counter(), 0
        for x, _y in loader:
            x.to(DEVICE, non_blocking=True)
            n += len(x)
        if DEVICE == "cuda":
            torch.cuda.synchronize()
        rate = n / (time.perf_counter() - start)
    return rate


def train_rate(cache_dir: Path, folds_csv: Path, root: Path, args: argparse.Namespace) -> float:
    """Training images/s of train_cell, from metrics.csv (epochs after the first)."""
    train_cell(cache_dir, folds_csv, 0, settings(args).to_dict(), root / "best.pt",
               root / "metrics.csv", root / "oof.npz", threads=args.threads)
    rows = pd.read_csv(root / "metrics.csv").iloc[1:]
    folds = read_folds(folds_csv, load_cache(cache_dir).ids)
    n_train = int(np.sum(folds != 0))
    images = n_train - int(n_train % args.batch == 1)  # EpochBatches drops a 1-image batch
    return images * len(rows) / float(rows["seconds"].sum())


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="deeplabv3_resnet50")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--images", type=int, default=640)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--augment", default="full")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--seconds", type=float, default=5.0, help="per model-only measurement")
    return p.parse_args()


def main() -> None:
    args = parse()
    if not torch.cuda.is_available():
        raise SystemExit("bench/gpu_train.py needs a CUDA device (bench/models.py for CPU)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(f"# {args.model} at {args.size}x{args.size}, batch {args.batch}, augment "
          f"{args.augment}, {args.threads} CPUs ({args.threads - 1} loader workers), "
          f"{torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    with tempfile.TemporaryDirectory(prefix="vocflow-gpu-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        cache, folds = make_data(root, args)
        print(f"# data: {args.images} images in {time.perf_counter() - start:.0f} s", flush=True)
        fp32 = model_only(args, "none", False)
        amp = model_only(args, "bf16", True)
        print(f"model alone, fp32:                  {fp32:8.1f} img/s", flush=True)
        print(f"model alone, bf16 + channels_last:  {amp:8.1f} img/s "
              f"({amp / fp32:.2f}x fp32)", flush=True)
        loader = loader_only(cache, folds, args)
        print(f"training loader alone ({args.augment}):      {loader:8.1f} img/s", flush=True)
        ours = train_rate(cache, folds, root, args)
        print(f"train_cell end to end:              {ours:8.1f} img/s", flush=True)
    print(f"gpu_train: ours {ours:.1f} img/s, baseline {amp:.1f} img/s, ratio {ours / amp:.2f}")


if __name__ == "__main__":
    main()
