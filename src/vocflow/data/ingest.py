"""Ingestion: read one split from its on-disk layout, validate it, pack it into the cache."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from vocflow.data.cache import build_cache
from vocflow.data.formats import read_split


def ingest(fmt: str, root: str | Path, split: str, out_dir: str | Path, *, image_size: int,
           class_names: Sequence[str], labels_root: str | Path | None = None,
           voc_lists: Mapping[str, str] | None = None, strict_labels: bool = True) -> None:
    """Validate split ``split`` of the dataset at ``root`` and write its cache to ``out_dir``."""
    # The hidden truth (labels_root) belongs to the test split only.
    labels_root = labels_root if split == "test" else None
    source = read_split(fmt, root, split, class_names=class_names, labels_root=labels_root,
                        voc_lists=voc_lists, strict_labels=strict_labels)
    build_cache(source, out_dir, image_size)


def split_inputs(fmt: str, root: str | Path, split: str, labels_root: str | Path | None = None,
                 voc_lists: Mapping[str, str] | None = None) -> list[str]:
    """The index files a split is read from, so the workflow re-ingests when they change.

    Kaggle layout: the split's csv (and the hidden-truth csv of a labelled test split);
    VOC devkit: the ImageSets/Segmentation list of the split.
    """
    root = Path(root)
    if fmt == "voc":
        lists = voc_lists or {"train": "train", "test": "val"}
        return [str(root / "ImageSets" / "Segmentation" / f"{lists[split]}.txt")]
    files = [str(root / split / f"{split}_set.csv")]
    if split == "test" and labels_root:
        files.append(str(Path(labels_root) / "test_set.csv"))
    return files
