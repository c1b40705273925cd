"""Readers for the two on-disk dataset layouts, with validation.

Two layouts hold the same kind of data (RGB images, per-pixel class masks with 0 = background,
1..C = classes, 255 = void, and per-image multi-label vectors):

* **Kaggle** (the competition's own, also used for the synthetic test data)::

      {root}/train/train_set.csv          Id, then one 0/1 column per class (header = class names)
      {root}/train/img/train_{Id}.npy     (H, W, 3) uint8 RGB
      {root}/train/seg/train_{Id}.npy     (H, W) values 0..C and 255
      {root}/test/test_set.csv            Id (class columns, if any, are ignored)
      {root}/test/img/test_{Id}.npy
      {labels_root}/test_set.csv          optional hidden truth of the test split, laid out
      {labels_root}/seg/test_{Id}.npy     like train

* **VOC devkit**::

      {root}/JPEGImages/{id}.jpg
      {root}/SegmentationClass/{id}.png   palette PNG whose pixel values are the class indices
      {root}/ImageSets/Segmentation/{list_name}.txt

Whole-directory problems (missing files, orphans, a malformed csv) are found by the readers up
front, before any image is decoded; per-item content is checked by ``SplitSource.read_image`` /
``read_mask`` when an item is read. Raw data is only ever read.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from vocflow.artifacts import VOID
from vocflow.data.sources import DEFAULT_VOC_LISTS
from vocflow.errors import ConfigError, DataError, reading

log = logging.getLogger(__name__)

FORMATS = ("kaggle", "synthetic", "voc")
KAGGLE_SPLITS = ("train", "test")
_ROOT_HINT = "set data.root in config/config.yaml to the dataset directory"
_REPLACE = "replace the file (raw data: vocflow only reads it)"


# ----------------------------------------------------------------------------- helpers


def _names(items: Sequence[str], limit: int = 3) -> str:
    """'a, b, c (5 in all)' — enough to find the offenders without flooding the log."""
    shown = ", ".join(str(x) for x in list(items)[:limit])
    return f"{shown} ({len(items)} in all)" if len(items) > limit else shown


def _require_dir(path: Path, what: str, hint: str = _ROOT_HINT) -> None:
    if not path.is_dir():
        raise DataError(f"{what} {path} does not exist or is not a directory; {hint}")


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist; {_ROOT_HINT}")


def _load_npy(path: Path) -> np.ndarray:
    with reading(path, ".npy array", _REPLACE):
        return np.load(path, allow_pickle=False)


def _image_hw(path: Path) -> tuple[int, ...]:
    """(H, W) of an image file without decoding its pixels (npy header / PIL lazy open)."""
    if path.suffix == ".npy":
        with reading(path, ".npy array", _REPLACE):
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape  # header only
        return tuple(int(s) for s in shape[:2])
    with reading(path, "image", _REPLACE), Image.open(path) as im:
        return im.height, im.width


def _check_size(arr: np.ndarray, path: Path, min_side: int, max_aspect: float) -> None:
    """Refuse images too small to learn from or too elongated to resize to a square."""
    h, w = arr.shape[:2]
    if min(h, w) < min_side:
        raise DataError(f"{path}: image is {h}x{w} px, below data.min_side = {min_side} px; "
                        "drop it from the split (its csv row and files) or lower data.min_side")
    if max(h, w) > max_aspect * min(h, w):
        raise DataError(f"{path}: image is {h}x{w} px, an aspect ratio of "
                        f"{max(h, w) / min(h, w):.1f} above data.max_aspect = {max_aspect}; "
                        "drop it from the split (its csv row and files) or raise data.max_aspect")


def _presence(mask: np.ndarray, n_classes: int) -> np.ndarray:
    """(C,) uint8: class c present iff any pixel == c + 1 (0 = background, 255 = void)."""
    counts = np.bincount(mask.ravel(), minlength=256)
    return (counts[1 : n_classes + 1] > 0).astype(np.uint8)


def _validate_image(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or arr.size == 0:
        raise DataError(
            f"{path}: image has shape {arr.shape} dtype {arr.dtype}, expected (H, W, 3) uint8 "
            "RGB; re-export the image"
        )
    return arr


def _validate_mask(arr: np.ndarray, path: Path, n_classes: int) -> np.ndarray:
    """Return the mask as (H, W) uint8; integer dtypes are accepted if their values fit."""
    if arr.ndim != 2 or arr.size == 0 or not (arr.dtype.kind in "ui" or arr.dtype == bool):
        raise DataError(
            f"{path}: mask has shape {arr.shape} dtype {arr.dtype}, expected (H, W) integer "
            "class indices; re-export the mask"
        )
    if arr.dtype != np.uint8:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise DataError(
                f"{path}: mask values span {lo}..{hi}, expected 0..{n_classes} or {VOID}; "
                "fix the mask"
            )
        arr = arr.astype(np.uint8)
    counts = np.bincount(arr.ravel(), minlength=256)
    bad = [v for v in np.flatnonzero(counts) if n_classes < v < VOID]
    if bad:
        raise DataError(
            f"{path}: mask holds values {_names([str(v) for v in bad], 5)} outside 0..{n_classes} "
            f"and {VOID}; fix the mask or the class list"
        )
    return arr


def _check_ids(ids: Sequence[str], where: Path) -> None:
    if len(ids) == 0:
        raise DataError(f"{where} lists no images; the split is empty, point at a real split")
    if any(not i for i in ids):
        raise DataError(f"{where} has an empty Id; fill in or drop that row")
    dupes = sorted(pd.Index(ids)[pd.Index(ids).duplicated()].unique())
    if dupes:
        raise DataError(f"{where} repeats Ids {_names(dupes)}; keep one row per Id")


def _check_present(expected: Sequence[Path], what: str, source: Path) -> None:
    """Every expected file exists; one directory listing per folder instead of a stat per file."""
    listings: dict[Path, set[str]] = {}
    missing: list[str] = []
    for p in expected:
        if p.parent not in listings:
            names = {q.name for q in p.parent.iterdir()} if p.parent.is_dir() else set()
            listings[p.parent] = names
        if p.name not in listings[p.parent]:
            missing.append(str(p))
    if missing:
        raise DataError(
            f"{what} missing for Ids in {source}: {_names(missing)}; restore the files or drop "
            "those rows"
        )


def _check_orphans(folder: Path, expected: Iterable[Path], source: Path) -> None:
    """Every .npy in ``folder`` has a csv row, so a truncated csv cannot silently drop data."""
    wanted = {p.name for p in expected}
    orphans = sorted(p.name for p in folder.glob("*.npy") if p.name not in wanted)
    if orphans:
        raise DataError(
            f"{folder} holds npy files without a row in {source}: {_names(orphans)}; add the "
            "rows or remove the files"
        )


# ----------------------------------------------------------------------------- SplitSource


@dataclass(frozen=True, eq=False)
class SplitSource:
    """One split of a dataset: ids, labels and where each image/mask lives.

    ``labels`` is (N, C) uint8 0/1, or None for an unlabelled split (then ``mask_paths`` is None
    too). Images/masks are read lazily, one at a time, and validated on read.
    """

    name: str
    ids: tuple[str, ...]
    class_names: tuple[str, ...]
    labels: np.ndarray | None
    image_paths: tuple[Path, ...]
    mask_paths: tuple[Path, ...] | None
    strict_labels: bool = True  # False: a label/mask disagreement only logs a warning
    min_side: int = 1  # images with a shorter side are refused (data.min_side)
    max_aspect: float = math.inf  # images longer than this times their width are refused

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.image_paths) != n or (
            self.mask_paths is not None and len(self.mask_paths) != n
        ):
            raise ValueError("SplitSource: ids, image_paths and mask_paths differ in length")
        if (self.labels is None) != (self.mask_paths is None):
            raise ValueError("SplitSource: labels and mask_paths must both be set or both None")
        if self.labels is not None:
            if self.labels.shape != (n, len(self.class_names)):
                raise ValueError(f"SplitSource: labels shape {self.labels.shape} != (N, C)")
            self.labels.setflags(write=False)  # frozen means frozen

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def read_image(self, i: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB, at least ``min_side`` px and at most ``max_aspect`` elongated."""
        path = self.image_paths[i]
        if path.suffix == ".npy":
            arr = _validate_image(_load_npy(path), path)
        else:
            with reading(path, "image", _REPLACE), Image.open(path) as im:
                arr = _validate_image(np.asarray(im.convert("RGB")), path)
        _check_size(arr, path, self.min_side, self.max_aspect)
        return arr

    def read_mask(self, i: int) -> np.ndarray:
        """(H, W) uint8 with values 0..C or 255, same H, W as the image; labels cross-checked."""
        if self.mask_paths is None or self.labels is None:
            raise DataError(f"split '{self.name}' is unlabelled: it has no masks to read")
        path = self.mask_paths[i]
        mask = _validate_mask(_read_mask_file(path), path, len(self.class_names))
        hw = _image_hw(self.image_paths[i])
        if mask.shape != hw:
            raise DataError(
                f"{path}: mask shape {mask.shape} differs from image {self.image_paths[i].name} "
                f"shape {hw}; re-export the mask"
            )
        self._check_labels(i, mask, path)
        return mask

    def _check_labels(self, i: int, mask: np.ndarray, path: Path) -> None:
        assert self.labels is not None
        present = _presence(mask, len(self.class_names))
        if np.array_equal(present, self.labels[i]):
            return
        names = np.asarray(self.class_names)
        only_mask = names[(present == 1) & (self.labels[i] == 0)].tolist()
        only_label = names[(present == 0) & (self.labels[i] == 1)].tolist()
        msg = (
            f"labels of Id {self.ids[i]} disagree with mask {path}: in mask only {only_mask}, "
            f"in labels only {only_label}"
        )
        if self.strict_labels:
            raise DataError(f"{msg}; fix the csv or the mask, or set data.strict_labels: false "
                            "to keep the csv labels with a warning")
        log.warning("%s; keeping the csv labels (data.strict_labels is false)", msg)


def _read_mask_file(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return _load_npy(path)
    with reading(path, "PNG mask", _REPLACE), Image.open(path) as im:
        if im.mode not in ("P", "L"):
            raise DataError(
                f"{path}: PNG mode {im.mode}, expected a palette ('P') PNG of class indices; "
                "use the devkit's SegmentationClass masks"
            )
        # No convert(): the palette indices ARE the class ids.
        return np.asarray(im)


# ----------------------------------------------------------------------------- Kaggle layout


def _read_csv(path: Path) -> pd.DataFrame:
    """A split csv with a unique, non-empty string ``Id`` column (ids stay strings: '0012')."""
    _require_file(path, "csv")
    with reading(path, "csv", "fix the csv"):
        frame = pd.read_csv(path, dtype={"Id": str}, keep_default_na=False)
    if "Id" not in frame.columns:
        raise DataError(f"{path} has no 'Id' column (columns: {list(frame.columns)}); add it")
    _check_ids(frame["Id"].tolist(), path)
    return frame


def _csv_labels(frame: pd.DataFrame, path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    """Class names (header order after Id) and (N, C) uint8 labels, checked to be 0/1."""
    names = tuple(str(c) for c in frame.columns if c != "Id")
    if not names:
        raise DataError(f"{path} has no class columns after 'Id'; use the labelled csv")
    columns = []
    for name in names:
        col = pd.to_numeric(frame[name], errors="coerce")  # '' / 'x' -> NaN -> rejected below
        bad = ~col.isin([0, 1])
        if bad.any():
            ids = frame.loc[bad, "Id"].tolist()
            vals = [repr(v) for v in frame.loc[bad, name].astype(str).unique()]
            raise DataError(
                f"{path}: column '{name}' holds values {_names(vals)} (not 0/1) for Ids "
                f"{_names(ids)}; fix the labels"
            )
        columns.append(col.to_numpy(dtype=np.uint8))
    return names, np.stack(columns, axis=1)


def _labels_for(
    frame: pd.DataFrame, ids: tuple[str, ...], path: Path
) -> tuple[tuple[str, ...], np.ndarray]:
    """Labels of ``frame`` reordered to ``ids``; the label csv must cover exactly those ids."""
    names, labels = _csv_labels(frame, path)
    index = pd.Index(frame["Id"])
    missing = sorted(set(ids) - set(index))
    extra = sorted(set(index) - set(ids))
    if missing or extra:
        raise DataError(
            f"{path} Ids differ from the split's csv: missing {_names(missing) or 'none'}, "
            f"extra {_names(extra) or 'none'}; use the labels of the same split"
        )
    return names, labels[index.get_indexer(list(ids))]


def _check_class_names(found: tuple[str, ...], given: Sequence[str] | None, where: Path) -> None:
    """The configured names, if any, equal the csv header's (order included)."""
    if not given or tuple(given) == found:
        return
    only_csv = [n for n in found if n not in given]
    only_config = [n for n in given if n not in found]
    if only_csv or only_config:
        diff = (f"only in the csv: {_names(only_csv, 5) or 'none'}; only in data.class_names: "
                f"{_names(only_config, 5) or 'none'}")
    else:
        k = next(k for k, (a, b) in enumerate(zip(found, given, strict=True)) if a != b)
        diff = (f"same names, other order: position {k + 1} is '{found[k]}' in the csv but "
                f"'{given[k]}' in data.class_names")
    raise ConfigError(
        f"data.class_names differs from the class columns of {where} ({diff}); fix "
        "data.class_names in config/config.yaml or remove it (the csv header names the classes)"
    )


def _unlabelled_class_names(
    root: Path, frame: pd.DataFrame, given: Sequence[str] | None
) -> tuple[str, ...]:
    """Class names of an unlabelled split: the train csv header, else the configured names.

    The test csv's own class columns (if any) are not trusted: the train header is the truth.
    """
    train_csv = root / "train" / "train_set.csv"
    if train_csv.is_file():
        with reading(train_csv, "csv", "fix the csv"):
            header = pd.read_csv(train_csv, nrows=0).columns
        names = tuple(str(c) for c in header if c != "Id")
        _check_class_names(names, given, train_csv)
        return names
    if given:
        return tuple(given)
    own = tuple(str(c) for c in frame.columns if c != "Id")
    if own:
        return own
    raise DataError(
        f"cannot tell the class names of the unlabelled split: {train_csv} does not exist; "
        "set data.class_names in config/config.yaml"
    )


def _kaggle_split_files(root: Path, split: str) -> tuple[pd.DataFrame, Path, tuple[Path, ...]]:
    """The split's csv frame, its path, and the checked image paths (no orphans, none missing)."""
    _require_dir(root, "data root")
    split_dir = root / split
    _require_dir(split_dir, "split directory")
    csv_path = split_dir / f"{split}_set.csv"
    frame = _read_csv(csv_path)
    images = tuple(split_dir / "img" / f"{split}_{i}.npy" for i in frame["Id"])
    _require_dir(split_dir / "img", "image directory")
    _check_present(images, "image npy", csv_path)
    _check_orphans(split_dir / "img", images, csv_path)
    return frame, csv_path, images


def _kaggle_truth(
    label_dir: Path, split: str, ids: tuple[str, ...], frame: pd.DataFrame | None
) -> tuple[tuple[str, ...], np.ndarray, tuple[Path, ...], Path]:
    """Class names, (N, C) labels and mask paths from ``label_dir`` (the split dir or labels_root).

    ``frame`` is the already-read split csv when the labels live in it, else None.
    """
    label_csv = label_dir / f"{split}_set.csv"
    names, labels = _labels_for(_read_csv(label_csv) if frame is None else frame, ids, label_csv)
    masks = tuple(label_dir / "seg" / f"{split}_{i}.npy" for i in ids)
    _require_dir(label_dir / "seg", "mask directory")
    _check_present(masks, "mask npy", label_csv)
    _check_orphans(label_dir / "seg", masks, label_csv)
    return names, labels, masks, label_csv


def read_kaggle_split(
    root: str | Path,
    split: str,
    labels_root: str | Path | None = None,
    *,
    class_names: Sequence[str] | None = None,
    strict_labels: bool = True,
) -> SplitSource:
    """Read ``{root}/{split}`` of the Kaggle layout; ``labels_root`` labels the test split.

    Train is labelled from its own csv; test only when ``labels_root`` (hidden truth laid out
    like train) is given. ``class_names``, if given, must equal the csv header.
    """
    if split not in KAGGLE_SPLITS:
        raise ConfigError(f"unknown split '{split}'; valid: {', '.join(KAGGLE_SPLITS)}")
    root = Path(root)
    frame, csv_path, images = _kaggle_split_files(root, split)
    ids = tuple(frame["Id"].tolist())
    if split == "test" and labels_root is None:
        names = _unlabelled_class_names(root, frame, class_names)
        log.info("kaggle %s: %d ids, unlabelled", split, len(ids))
        return SplitSource(split, ids, names, None, images, None, strict_labels)
    if labels_root is None:
        names, labels, masks, label_csv = _kaggle_truth(root / split, split, ids, frame)
    else:
        _require_dir(Path(labels_root), "labels_root", "point it at the test split's truth")
        names, labels, masks, label_csv = _kaggle_truth(Path(labels_root), split, ids, None)
    _check_class_names(names, class_names, label_csv)
    log.info("kaggle %s: %d ids, %d classes, labelled", split, len(ids), len(names))
    return SplitSource(split, ids, names, labels, images, masks, strict_labels)


# ----------------------------------------------------------------------------- VOC layout


def read_voc_split(
    root: str | Path,
    list_name: str,
    split: str,
    class_names: Sequence[str],
    *,
    strict_labels: bool = True,
) -> SplitSource:
    """Read the ids of ``ImageSets/Segmentation/{list_name}.txt``; labels come from the masks.

    Deriving labels decodes every mask once here (PNGs are small), after the directory checks.
    """
    if not class_names:
        raise ConfigError("class_names is empty; set data.class_names in config/config.yaml")
    root = Path(root)
    _require_dir(root, "data root")
    for sub in ("JPEGImages", "SegmentationClass"):
        _require_dir(root / sub, "VOC directory")
    list_path = root / "ImageSets" / "Segmentation" / f"{list_name}.txt"
    _require_file(list_path, "VOC image list")
    with reading(list_path, "text list of ids", "fix the list"):
        text = list_path.read_text()
    ids = tuple(line.strip() for line in text.splitlines() if line.strip())
    _check_ids(ids, list_path)
    images = tuple(root / "JPEGImages" / f"{i}.jpg" for i in ids)
    masks = tuple(root / "SegmentationClass" / f"{i}.png" for i in ids)
    _check_present(images, "JPEG", list_path)
    _check_present(masks, "mask PNG", list_path)
    n_classes = len(class_names)
    labels = np.stack(
        [_presence(_validate_mask(_read_mask_file(p), p, n_classes), n_classes) for p in masks]
    )
    log.info("voc %s (%s): %d ids, %d classes", split, list_name, len(ids), n_classes)
    return SplitSource(split, ids, tuple(class_names), labels, images, masks, strict_labels)


# ----------------------------------------------------------------------------- dispatch


def read_split(
    fmt: str,
    root: str | Path,
    split: str,
    *,
    class_names: Sequence[str] | None,
    labels_root: str | Path | None = None,
    voc_lists: Mapping[str, str] | None = None,
    strict_labels: bool = True,
    min_side: int = 1,
    max_aspect: float = math.inf,
) -> SplitSource:
    """Dispatch on ``fmt`` ("kaggle", "synthetic" = Kaggle layout, "voc").

    For "voc", ``voc_lists`` maps the split name to its ImageSets list (default:
    ``DEFAULT_VOC_LISTS``, train -> train.txt, test -> val.txt). Images with a side below
    ``min_side`` px or an aspect ratio above ``max_aspect`` are refused when read.
    """
    source = _read_split(fmt, root, split, class_names=class_names, labels_root=labels_root,
                         voc_lists=voc_lists, strict_labels=strict_labels)
    return dataclasses.replace(source, min_side=min_side, max_aspect=max_aspect)


def _read_split(
    fmt: str,
    root: str | Path,
    split: str,
    *,
    class_names: Sequence[str] | None,
    labels_root: str | Path | None,
    voc_lists: Mapping[str, str] | None,
    strict_labels: bool,
) -> SplitSource:
    if fmt in ("kaggle", "synthetic"):
        return read_kaggle_split(
            root, split, labels_root, class_names=class_names, strict_labels=strict_labels
        )
    if fmt == "voc":
        if labels_root is not None:
            log.warning("labels_root %s is ignored for the voc format", labels_root)
        lists = DEFAULT_VOC_LISTS if voc_lists is None else voc_lists
        if split not in lists:
            raise ConfigError(
                f"no VOC list for split '{split}' in voc_lists {dict(lists)}; add it to "
                "config/config.yaml"
            )
        return read_voc_split(
            root, lists[split], split, class_names or (), strict_labels=strict_labels
        )
    raise ConfigError(
        f"unknown data format '{fmt}' (data.format in config/config.yaml); valid: "
        f"{', '.join(FORMATS)}"
    )
