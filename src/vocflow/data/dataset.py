"""Torch datasets over the packed, memory-mapped cache.

``CacheBatches`` is what training uses: the DataLoader hands it a whole batch at once
(``__getitems__``), so evaluation is one fancy-indexed read of the memory map, and training
augments item by item into one preallocated uint8 array. Batches stay uint8 (N, S, S, 3);
``vocflow.data.transforms.normalize_batch`` normalises them on the device.

Randomness is a pure function of (seed, epoch, batch number): ``EpochBatches`` derives each
epoch's order from its own seed and ``CacheBatches`` seeds the augmentation per batch. So a run
gives the same batches with 0 or N worker processes, workers may persist across epochs, and a
run resumed at (epoch, batch) needs no loader state at all.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import NamedTuple

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class BatchKey(NamedTuple):
    """What the sampler sends to the dataset (through worker queues): which items, and the
    (epoch, batch) that seeds their augmentation."""

    epoch: int
    batch: int
    positions: np.ndarray  # positions into the dataset's ``indices``


class EpochBatches(Sampler[BatchKey]):
    """Batches of positions 0..n-1, reshuffled per epoch from ``seed`` when ``shuffle``.

    A last batch of a single item is dropped when training (BatchNorm cannot train on one
    sample); ``start`` skips the first batches of the next epoch, for a mid-epoch resume.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, shuffle: bool = True) -> None:
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.epoch, self.start = 1, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.n, generator=gen).numpy()

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        if rest == 1 and self.shuffle and full > 0:
            return full
        return full + int(rest > 0)

    def __iter__(self) -> Iterator[BatchKey]:
        order = self.order()
        for b in range(self.start, len(self)):
            positions = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield BatchKey(self.epoch, b, positions)


class CacheBatches(Dataset):
    """Batches of cache items ``indices`` for one task, as uint8 tensors.

    ``__getitems__(key)`` returns ``(images, targets)``: images (B, S, S, 3) uint8 at the
    transform's output side; targets (B, C) float32 labels for classification or (B, S, S)
    uint8 class indices (255 = void) for segmentation.
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray | None, labels: np.ndarray,
                 indices: np.ndarray, task: str, transform: A.Compose | None = None,
                 seed: int = 0) -> None:
        self.images, self.masks, self.labels = images, masks, labels
        self.indices = np.asarray(indices, dtype=np.int64)
        self.task, self.transform, self.seed = task, transform, seed

    def __len__(self) -> int:
        return len(self.indices)

    def __getitems__(self, key: BatchKey) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.indices[np.asarray(key.positions)]
        segment = self.task == "segmentation"
        if self.transform is None:  # one fancy-indexed read per array, no per-item work
            images, masks = self.images[rows], self.masks[rows] if segment else None
        else:
            images, masks = self._augment(rows, key, segment)
        if segment:
            return torch.from_numpy(images), torch.from_numpy(masks)
        return torch.from_numpy(images), torch.from_numpy(self.labels[rows].astype(np.float32))

    def _augment(self, rows: np.ndarray, key: BatchKey,
                 segment: bool) -> tuple[np.ndarray, np.ndarray | None]:
        assert self.transform is not None
        # Albumentations 2 draws from the generators set here; one pair per batch is cheap.
        rng = np.random.default_rng([self.seed, key.epoch, key.batch])
        self.transform.set_random_state(rng, random.Random(int(rng.integers(2**63))))
        images, masks = [], []
        for j in rows:
            if segment:
                out = self.transform(image=self.images[j], mask=self.masks[j])
                masks.append(out["mask"])
            else:
                out = self.transform(image=self.images[j])
            images.append(out["image"])
        return np.stack(images), np.stack(masks) if segment else None


def unwrap(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """collate_fn for CacheBatches: the batch is already assembled (module-level: picklable)."""
    return batch
