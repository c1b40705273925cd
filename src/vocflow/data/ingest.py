"""Ingestion: read one split from its on-disk layout, validate it, pack it into the cache."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from vocflow.data.cache import build_cache
from vocflow.data.formats import read_split

MIN_SIDE = 16  # px: images with a shorter side are refused (data.min_side)
MAX_ASPECT = 10.0  # long side / short side above this is refused (data.max_aspect)


def ingest(fmt: str, root: str | Path, split: str, out_dir: str | Path, *, image_size: int,
           class_names: Sequence[str] | None = None, labels_root: str | Path | None = None,
           voc_lists: Mapping[str, str] | None = None, strict_labels: bool = True,
           min_side: int = MIN_SIDE, max_aspect: float = MAX_ASPECT) -> None:
    """Validate split ``split`` of the dataset at ``root`` and write its cache to ``out_dir``.

    ``class_names``: None takes them from the data (the Kaggle csv header); given, they must
    match it. The VOC layout has no header and needs them.
    """
    # The hidden truth (labels_root) belongs to the test split only.
    labels_root = labels_root if split == "test" else None
    source = read_split(fmt, root, split, class_names=class_names, labels_root=labels_root,
                        voc_lists=voc_lists, strict_labels=strict_labels, min_side=min_side,
                        max_aspect=max_aspect)
    build_cache(source, out_dir, image_size)
