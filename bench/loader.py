"""Loader throughput: vocflow's batched cache loaders vs a per-item pandas/PIL pipeline.

Both pipelines read the same images (the synthetic dataset's cache at --size px) and apply the
same albumentations transforms (the ``full`` preset, built by the same function; none for
evaluation). One core: torch and OpenCV use one thread, no loader workers.

Baseline, as in the original study's notebooks: a DataFrame holding the images, and per item
``.iloc`` -> PIL -> albumentations -> PIL -> ToTensor -> Normalize, then default collation:
normalised float32 (N, 3, S, S) images and (N, S, S) int64 masks.
Ours: ``CacheBatches`` (fancy-indexed memory-map reads, per-batch seeding) hands uint8 batches
(N, S, S, 3) and (N, S, S) to the training step, which normalises them where the model runs
(``vocflow.train.model_input`` -> ``normalize_batch``). Two figures follow from that:

- ``loader_eval`` (a GPU job, what the cluster's training and prediction jobs are): the CPU's
  work is the loader plus the copy of each uint8 batch into pinned memory (emulated here by a
  copy: this machine has no CUDA); normalisation and the int64 cast are device work.
- ``loader_eval_cpu`` (a CPU-only job): ours also normalises to float32 (one widening pass and
  one multiply-add, kept in the loader's NHWC layout: channels_last) and widens the masks to
  int64 on the CPU.
- ``loader`` (training, full augmentation preset): ours normalises on the CPU too, so it
  holds for both kinds of job.

Time is this process's CPU time (user + system), so neighbours on a shared machine do not
count; each figure is the best of --repeats runs of at least --seconds each, interleaved.

Usage: .venv/bin/python bench/loader.py [--n 192] [--size 64] [--repeats 5] [--seconds 1]
The last three lines read ``NAME: ours X img/s, baseline Y img/s, ratio R`` for
``loader_eval_cpu``, ``loader_eval`` and, last, ``loader``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import functional as TF

from vocflow.data.cache import Cache, load_cache
from vocflow.data.dataset import CacheBatches, EpochBatches, unwrap
from vocflow.data.ingest import ingest
from vocflow.data.synthetic import VOC_CLASSES, make_synthetic
from vocflow.data.transforms import build_transform, normalize_batch
from vocflow.imagenet import MEAN, STD


class PandasPILDataset(Dataset):
    """The baseline: one DataFrame row per item, PIL images, torchvision ToTensor/Normalize."""

    def __init__(self, frame: pd.DataFrame, transform: object | None) -> None:
        self.frame, self.transform = frame, transform

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = self.frame.iloc[i]
        image, mask = Image.fromarray(row["image"]), Image.fromarray(row["mask"])
        if self.transform is not None:
            out = self.transform(image=np.array(image), mask=np.array(mask))
            image, mask = Image.fromarray(out["image"]), Image.fromarray(out["mask"])
        x = TF.normalize(TF.to_tensor(image), MEAN.tolist(), STD.tolist())
        return x, torch.from_numpy(np.array(mask, dtype=np.int64))


def make_cache(root: Path, n: int, size: int) -> Cache:
    make_synthetic(root / "synthetic", n_train=n, n_test=1, seed=0)
    ingest("synthetic", root / "synthetic", "train", root / "cache", image_size=size,
           class_names=VOC_CLASSES)
    return load_cache(root / "cache")


def baseline_loader(cache: Cache, augment: bool, batch_size: int) -> DataLoader:
    frame = pd.DataFrame({"Id": cache.ids, "image": list(np.asarray(cache.images)),
                          "mask": list(np.asarray(cache.masks))})
    size = int(cache.images.shape[1])
    transform = build_transform("full", size) if augment else None
    return DataLoader(PandasPILDataset(frame, transform), batch_size=batch_size,
                      shuffle=augment, num_workers=0, generator=torch.Generator().manual_seed(0))


def our_loader(cache: Cache, augment: bool, batch_size: int) -> DataLoader:
    size = int(cache.images.shape[1])
    transform = build_transform("full", size) if augment else None
    data = CacheBatches(cache.images, cache.masks, cache.labels, np.arange(len(cache)),
                        "segmentation", transform)
    sampler = EpochBatches(len(cache), batch_size, shuffle=augment)
    return DataLoader(data, batch_sampler=sampler, collate_fn=unwrap, num_workers=0)


def ours_cpu_step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # what vocflow.train hands the model on CPU (channels_last, the default)
    return normalize_batch(x, channels_last=True), y.long()


def ours_gpu_step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # A GPU job's DataLoader copies each uint8 batch into pinned memory (pin_memory=True);
    # the copy to the device, normalize_batch and the int64 cast then run on the GPU.
    return x.clone(), y.clone()


STEPS: dict[str, Callable | None] = {"ours (CPU job)": ours_cpu_step,
                                     "ours (GPU job)": ours_gpu_step, "baseline": None}


def throughput(loader: DataLoader, step: Callable | None, min_seconds: float) -> float:
    """Images per CPU second over whole passes of ``loader``, at least ``min_seconds`` long."""
    start, images = time.process_time(), 0
    while images == 0 or time.process_time() - start < min_seconds:
        for x, y in loader:
            if step is not None:
                x, y = step(x, y)
            assert step is ours_gpu_step or (x.dtype == torch.float32 and y.dtype == torch.int64)
            images += len(x)
    return images / (time.process_time() - start)


def compare(name: str, cache: Cache, augment: bool, batch_size: int, repeats: int,
            min_seconds: float, steps: dict[str, Callable | None]) -> dict[str, float]:
    """Print each pipeline's runs; return its best (as timeit does: on a shared machine,
    slower runs measure cache and memory-bus contention, not the loader)."""
    loaders = {label: (baseline_loader if step is None else our_loader)(cache, augment,
                                                                        batch_size)
               for label, step in steps.items()}
    for label, step in steps.items():  # warm-up: page cache, imports
        throughput(loaders[label], step, 0)
    runs: dict[str, list[float]] = {label: [] for label in steps}
    for _ in range(repeats):  # interleaved, so drift of a shared machine hits all alike
        for label, step in steps.items():
            runs[label].append(throughput(loaders[label], step, min_seconds))
    print(f"{name} (batch {batch_size}): " + ", ".join(
        f"{label} {[round(r) for r in rates]} img/s" for label, rates in runs.items()))
    return {label: max(rates) for label, rates in runs.items()}


def summary(name: str, ours: float, baseline: float) -> str:
    return (f"{name}: ours {ours:.0f} img/s, baseline {baseline:.0f} img/s, "
            f"ratio {ours / baseline:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=192, help="images in the bench dataset")
    parser.add_argument("--size", type=int, default=64, help="cache side in px")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per pipeline")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum length of a run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        cache = make_cache(Path(tmp), args.n, args.size)
        print(f"{args.n} images at {args.size} px, one core, num_workers=0; best of "
              f"{args.repeats} runs of >= {args.seconds} s")
        ev = compare("evaluation", cache, False, 32, args.repeats, args.seconds, STEPS)
        train = compare("training", cache, True, 16, args.repeats, args.seconds,
                        {"ours": ours_cpu_step, "baseline": None})
    print(summary("loader_eval_cpu", ev["ours (CPU job)"], ev["baseline"]))
    print(summary("loader_eval", ev["ours (GPU job)"], ev["baseline"]))
    print(summary("loader", train["ours"], train["baseline"]))

if __name__ == "__main__":
    main()
