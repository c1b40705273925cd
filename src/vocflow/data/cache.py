"""Pack one split into a fast, memory-mapped cache, built once by the ingest rule.

Files in the cache directory (``CACHE_FILES``)::

    index.csv         Id, height, width, labelled, then one 0/1 column per class (in order)
    images.npy        (N, S, S, 3) uint8, resized by square_image (INTER_AREA to shrink)
    masks.npy         (N, S, S) uint8, resized with INTER_NEAREST (class ids / void stay exact);
                      all 255 for an unlabelled split
    orig_images.npy   flat uint8: every original (H_i, W_i, 3) image raveled and concatenated
    orig_masks.npy    flat uint8: every original (H_i, W_i) mask likewise; empty if unlabelled

Offsets into the flat files follow from the heights/widths (cumulative sums), so no ragged
object arrays (which would need pickle) are stored.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from vocflow.artifacts import VOID
from vocflow.atomic import save_npy, write_csv
from vocflow.data.formats import SplitSource
from vocflow.errors import ConfigError, DataError, reading

log = logging.getLogger(__name__)

CACHE_FILES = ("index.csv", "images.npy", "masks.npy", "orig_images.npy", "orig_masks.npy")
_META_COLUMNS = ("Id", "height", "width", "labelled")
_RERUN = "re-run the ingest rule (snakemake --forcerun ingest)"


# ----------------------------------------------------------------------------- build


def _resize_item(
    source: SplitSource, i: int, size: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Read item i: (S, S, 3) image, (S, S) mask or None, and the originals (H, W, 3), (H, W)."""
    image = source.read_image(i)
    small = square_image(image, size)
    if not source.labelled:
        return small, None, image, None
    mask = source.read_mask(i)
    small_mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)
    return small, small_mask, image, mask


def square_image(image: np.ndarray, size: int, out: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3): INTER_AREA when shrinking (as the cache is built),
    INTER_LINEAR when enlarging (INTER_AREA enlarges blockily); into ``out`` when given."""
    shrink = size < max(image.shape[:2])
    return cv2.resize(image, (size, size), dst=out,
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _index_frame(source: SplitSource, heights: np.ndarray, widths: np.ndarray) -> pd.DataFrame:
    clash = set(_META_COLUMNS) & set(source.class_names)
    if clash:
        raise DataError(f"class names {sorted(clash)} clash with cache index columns; rename them")
    n, c = len(source), len(source.class_names)
    labels = source.labels if source.labels is not None else np.zeros((n, c), np.uint8)
    frame = pd.DataFrame(
        {
            "Id": list(source.ids),
            "height": heights,
            "width": widths,
            "labelled": int(source.labelled),
        }
    )
    classes = pd.DataFrame(labels.astype(np.uint8), columns=list(source.class_names))
    return pd.concat([frame, classes], axis=1)


def build_cache(source: SplitSource, out_dir: str | Path, image_size: int) -> None:
    """Write ``CACHE_FILES`` for ``source`` into ``out_dir`` (each file atomically).

    Stale cache files are removed first and index.csv is written last, so a killed build never
    leaves a directory that load_cache accepts as complete.
    """
    if not isinstance(image_size, int) or image_size <= 0:
        raise ConfigError(f"image_size {image_size!r} must be a positive integer; fix the config")
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in CACHE_FILES:  # our own outputs, never raw data
        (out / name).unlink(missing_ok=True)
    n, s = len(source), image_size
    images = np.empty((n, s, s, 3), np.uint8)
    masks = np.full((n, s, s), VOID, np.uint8)
    heights, widths = np.empty(n, np.int64), np.empty(n, np.int64)
    orig_images: list[np.ndarray] = []
    orig_masks: list[np.ndarray] = []
    for i in range(n):
        images[i], small_mask, image, mask = _resize_item(source, i, s)
        heights[i], widths[i] = image.shape[:2]
        orig_images.append(image.ravel())
        if small_mask is not None and mask is not None:
            masks[i] = small_mask
            orig_masks.append(mask.ravel())
    save_npy(out / "images.npy", images)
    save_npy(out / "masks.npy", masks)
    save_npy(out / "orig_images.npy", np.concatenate(orig_images))
    save_npy(out / "orig_masks.npy", _concat_or_empty(orig_masks))
    write_csv(out / "index.csv", _index_frame(source, heights, widths))
    seconds = time.perf_counter() - start
    log.info("cached split %s: N=%d image_size=%d in %.1f s", source.name, n, s, seconds)


def _concat_or_empty(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, np.uint8)


# ----------------------------------------------------------------------------- load


@dataclass
class Cache:
    """A loaded cache; the big arrays are read-only memory maps (cheap to open per worker)."""

    ids: list[str]
    class_names: list[str]
    labelled: bool
    labels: np.ndarray  # (N, C) uint8, zeros if unlabelled
    images: np.ndarray  # (N, S, S, 3) uint8, memory-mapped
    masks: np.ndarray  # (N, S, S) uint8, memory-mapped, all 255 if unlabelled
    heights: np.ndarray  # (N,) int64 original heights
    widths: np.ndarray  # (N,) int64 original widths
    orig_images: np.ndarray = field(repr=False)  # flat uint8, memory-mapped
    orig_masks: np.ndarray = field(repr=False)  # flat uint8, memory-mapped; empty if unlabelled
    _starts: np.ndarray = field(init=False, repr=False)  # (N,) pixel offset of item i

    def __post_init__(self) -> None:
        pixels = self.heights * self.widths
        self._starts = np.concatenate([[0], np.cumsum(pixels)[:-1]]).astype(np.int64)

    @property
    def image_size(self) -> int:
        """Side S of the square cached images."""
        return int(self.images.shape[1])

    def __len__(self) -> int:
        return len(self.ids)

    def _pixel_range(self, i: int) -> tuple[int, int, int, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"cache index {i} out of range for {len(self)} items")
        i = i % len(self)
        h, w = int(self.heights[i]), int(self.widths[i])
        return int(self._starts[i]), h * w, h, w

    def original_image(self, i: int) -> np.ndarray:
        """(H_i, W_i, 3) uint8, a read-only view into the memory map."""
        start, size, h, w = self._pixel_range(i)
        return self.orig_images[3 * start : 3 * (start + size)].reshape(h, w, 3)

    def original_mask(self, i: int) -> np.ndarray:
        """(H_i, W_i) uint8; all 255 (void) for an unlabelled split."""
        start, size, h, w = self._pixel_range(i)
        if not self.labelled:
            return np.full((h, w), VOID, np.uint8)
        return self.orig_masks[start : start + size].reshape(h, w)

    def resampled(self, size: int, rows: np.ndarray | None = None,
                  masks: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Items ``rows`` (default all) at side ``size``, resized from the ORIGINALS.

        Returns (n, size, size, 3) uint8 images (``square_image``) and, with ``masks``,
        (n, size, size) uint8 masks (INTER_NEAREST; all void for an unlabelled split). At the
        cache's own side these are the cache's arrays (the memory maps themselves for all
        rows), built the same way. For a variant whose ``image_size`` is not the cache side:
        enlarging the cache instead loses what its shrink dropped (CamVid frames, 240 x 180
        squeezed to 128 px: pole IoU 0.05 from the cache, 0.17 from the originals, at 192 px).
        """
        if size == self.image_size:
            if rows is None:
                return self.images, self.masks if masks else None
            return self.images[rows], np.asarray(self.masks[rows]) if masks else None
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, np.int64)
        images = np.empty((len(rows), size, size, 3), np.uint8)
        out_masks = np.empty((len(rows), size, size), np.uint8) if masks else None
        for j, i in enumerate(rows):
            square_image(self.original_image(int(i)), size, out=images[j])
            if out_masks is not None:
                cv2.resize(self.original_mask(int(i)), (size, size), dst=out_masks[j],
                           interpolation=cv2.INTER_NEAREST)
        return images, out_masks

    def class_pixel_counts(self, rows: np.ndarray | None = None, chunk: int = 256) -> np.ndarray:
        """(C+1,) int64 pixel counts of classes 0..C over the resized masks of ``rows`` (default
        all); void excluded."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows)
        counts = np.zeros(256, np.int64)
        for lo in range(0, len(rows), chunk):  # chunked: never pulls the whole map into RAM
            counts += np.bincount(np.asarray(self.masks[rows[lo : lo + chunk]]).ravel(),
                                  minlength=256)
        return counts[: len(self.class_names) + 1]


def _read_index(path: Path) -> pd.DataFrame:
    with reading(path, "cache index csv", _RERUN):
        frame = pd.read_csv(path, dtype={"Id": str}, keep_default_na=False)
    if tuple(frame.columns[: len(_META_COLUMNS)]) != _META_COLUMNS or len(frame) == 0:
        raise DataError(f"{path} is not a cache index (columns {list(frame.columns)}); {_RERUN}")
    return frame


def _check_shapes(cache: Cache, cache_dir: Path) -> None:
    """The arrays agree with the index, so a mix of old and new files is caught on load."""
    n, pixels = len(cache), int((cache.heights * cache.widths).sum())
    ok = (
        cache.images.ndim == 4
        and cache.images.shape[0] == n
        and cache.images.shape[3] == 3
        and cache.masks.shape == cache.images.shape[:3]
        and cache.orig_images.shape == (3 * pixels,)
        and cache.orig_masks.shape == ((pixels,) if cache.labelled else (0,))
    )
    if not ok:
        raise DataError(f"cache {cache_dir} files disagree with index.csv (N={n}); {_RERUN}")


def load_cache(cache_dir: str | Path) -> Cache:
    """Open a cache written by build_cache; the .npy files are memory-mapped read-only."""
    root = Path(cache_dir)
    missing = [name for name in CACHE_FILES if not (root / name).is_file()]
    if missing:
        raise DataError(f"cache {root} lacks {', '.join(missing)}; {_RERUN}")
    frame = _read_index(root / "index.csv")
    arrays = {}
    for name in CACHE_FILES[1:]:
        with reading(root / name, "cache array", _RERUN):
            arrays[name] = np.load(root / name, mmap_mode="r", allow_pickle=False)
    class_names = [str(c) for c in frame.columns[len(_META_COLUMNS) :]]
    with reading(root / "index.csv", "cache index csv", _RERUN):  # non-numeric columns
        cache = Cache(
            ids=frame["Id"].tolist(),
            class_names=class_names,
            labelled=bool(frame["labelled"].to_numpy().all()),
            labels=frame[class_names].to_numpy(dtype=np.uint8),
            images=arrays["images.npy"],
            masks=arrays["masks.npy"],
            heights=frame["height"].to_numpy(dtype=np.int64),
            widths=frame["width"].to_numpy(dtype=np.int64),
            orig_images=arrays["orig_images.npy"],
            orig_masks=arrays["orig_masks.npy"],
        )
    _check_shapes(cache, root)
    return cache
