"""Where and how a job computes: its device, its threads, its seeds."""

from __future__ import annotations

import random

import cv2
import numpy as np
import torch


def pick_device() -> torch.device:
    # Jobs on nodes without a usable CUDA driver (or fake GPUs in tests) fall back to CPU.
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_threads(threads: int) -> None:
    """Use the job's CPUs and no more: jobs share nodes, and torch and OpenCV would otherwise
    start a thread per core of the node."""
    torch.set_num_threads(max(1, threads))
    cv2.setNumThreads(max(1, threads))


def seed_everything(seed: int, threads: int, device: torch.device | None = None) -> None:
    """Seed the global generators; exact kernels on CPU, fast (cuDNN autotuned) ones on CUDA."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    set_threads(threads)
    if device is not None and device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    else:
        torch.use_deterministic_algorithms(True, warn_only=True)
