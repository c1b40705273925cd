"""Shared fixtures: a tiny synthetic dataset packed into caches, built once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from vocflow.data.cache import load_cache
from vocflow.data.ingest import ingest
from vocflow.data.stratify import write_folds
from vocflow.data.synthetic import VOC_CLASSES, make_synthetic

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 40 + 8 image synthetic dataset, its 32 px caches and 2 folds."""
    base = tmp_path_factory.mktemp("tiny")
    root = base / "synthetic"
    make_synthetic(root, n_train=40, n_test=8, seed=3, min_side=40, max_side=64)
    caches = {}
    for split in ("train", "test"):
        caches[split] = base / "data" / split
        ingest("synthetic", root, split, caches[split], image_size=32, class_names=VOC_CLASSES,
               labels_root=root / "test_labels")
    folds = base / "data" / "folds.csv"
    train = load_cache(caches["train"])
    write_folds(train.ids, train.labels, 2, 0, folds)
    return {"root": root, "train": caches["train"], "test": caches["test"], "folds": folds}


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread for a module of tiny-tensor tests: a second intra-op thread only adds
    contention on a shared 2-core machine (use with pytest.mark.usefixtures)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
