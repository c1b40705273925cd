"""Torch dataset over the packed cache: integer indexing into memory-mapped arrays only."""

from __future__ import annotations

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from vocflow.data.transforms import normalize


class CacheDataset(Dataset):
    """Samples ``indices`` of the cache arrays for one task.

    Returns ``(image, target)``: image (3, S, S) float32; target (C,) float32 labels for
    classification or (S, S) int64 class indices (255 = void) for segmentation.
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray, labels: np.ndarray,
                 indices: np.ndarray, task: str, transform: A.Compose | None = None) -> None:
        self.images, self.masks, self.labels = images, masks, labels
        self.indices = np.asarray(indices, dtype=np.int64)
        self.task, self.transform = task, transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        j = self.indices[i]
        image, mask = np.asarray(self.images[j]), np.asarray(self.masks[j])
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        x = torch.from_numpy(np.ascontiguousarray(normalize(image)))
        if self.task == "classification":
            return x, torch.from_numpy(self.labels[j].astype(np.float32))
        return x, torch.from_numpy(mask.astype(np.int64))
