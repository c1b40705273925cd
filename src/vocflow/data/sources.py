"""The raw files a split is read from, and a cheap fingerprint of them — without reading pixels.

The workflow evaluates this while it builds its job graph (data.smk), on every ``snakemake``
start, so it imports nothing heavy and touches only file metadata.

A raw file is identified by its path, size and modification time (ns). That is what make,
rsync and Snakemake itself compare, and it costs one ``stat`` per file. Hashing the content
would also catch a rewrite that keeps size and mtime to the nanosecond (which no ordinary copy,
``np.save`` or editor does), but reads every pixel of the dataset on every start
(bench/ingest_sources.py measures both). A changed mtime counts as a change even when it moved
back in time (``cp -p``, ``rsync -a`` of an older file), unlike Snakemake's newer-than check.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

from vocflow.errors import ConfigError, DataError

_ROOT_HINT = "set data.root in config/config.yaml to the dataset directory"
# VOC 2009 publishes no segmentation truth for its test set, so "val" stands in for it.
DEFAULT_VOC_LISTS: Mapping[str, str] = MappingProxyType({"train": "train", "test": "val"})


def split_inputs(fmt: str, root: str | Path, split: str, labels_root: str | Path | None = None,
                 voc_lists: Mapping[str, str] | None = None) -> list[str]:
    """The index files a split is read from (the ingest rule's input files).

    Kaggle layout: the split's csv (and the hidden-truth csv of a labelled test split);
    VOC devkit: the ImageSets/Segmentation list of the split. A dataset on disk must have them
    before anything runs (a missing one is a DataError naming the config key to fix); the
    synthetic format's are written by the workflow itself.
    """
    lists = voc_lists or DEFAULT_VOC_LISTS
    if fmt == "voc" and split not in lists:
        raise ConfigError(f"no VOC list for split '{split}' in data.voc_lists {dict(lists)}; "
                          "add it to config/config.yaml")
    files = _index_files(fmt, Path(root), split, labels_root, lists)
    if fmt != "synthetic":
        if not Path(root).is_dir():
            raise DataError(f"data root {root} does not exist or is not a directory; {_ROOT_HINT}")
        for path, hint in files.items():
            if not path.is_file():
                raise DataError(f"{path} does not exist; {hint}")
    return [str(path) for path in files]


def _index_files(fmt: str, root: Path, split: str, labels_root: str | Path | None,
                 lists: Mapping[str, str]) -> dict[Path, str]:
    """Index file -> what to do when it is missing."""
    if fmt == "voc":
        if split not in lists:
            return {}
        return {root / "ImageSets" / "Segmentation" / f"{lists[split]}.txt":
                "fix data.voc_lists or data.root in config/config.yaml"}
    files = {root / split / f"{split}_set.csv": _ROOT_HINT}
    if split == "test" and labels_root:
        files[Path(labels_root) / "test_set.csv"] = (
            "set data.test_labels to the folder of the test split's truth, or null")
    return files


def split_sources(fmt: str, root: str | Path, split: str, labels_root: str | Path | None = None,
                  voc_lists: Mapping[str, str] | None = None) -> str:
    """sha256 over (path, size, mtime) of every raw file ingest reads for ``split``.

    The ingest rule passes it as a parameter, so Snakemake re-runs ingest when any of those
    files changes (params are one of its rerun triggers). "" for the synthetic format: its
    files are outputs of the workflow's own make_synthetic rule, tracked as such, and do not
    exist yet when a first run builds its graph. Missing files are recorded as missing;
    ingest itself reports them.
    """
    if fmt == "synthetic":
        return ""
    digest = hashlib.sha256()
    for line in sorted(_stat_lines(fmt, Path(root), split, labels_root, voc_lists)):
        digest.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


def _stat_lines(fmt: str, root: Path, split: str, labels_root: str | Path | None,
                voc_lists: Mapping[str, str] | None) -> Iterator[str]:
    lists = voc_lists or DEFAULT_VOC_LISTS
    for index in _index_files(fmt, root, split, labels_root, lists):
        yield _stat_line(index)
    if fmt == "voc":
        yield from _voc_files(root, split, lists)
        return
    folders = [root / split / "img"]
    if split == "train":
        folders.append(root / split / "seg")
    elif labels_root:
        folders.append(Path(labels_root) / "seg")
    for folder in folders:
        yield from _folder_lines(folder)


def _stat_line(path: Path) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}\tmissing"
    return f"{path}\t{st.st_size}\t{st.st_mtime_ns}"


def _folder_lines(folder: Path) -> Iterator[str]:
    """Every file of a Kaggle image/mask folder: ingest refuses files without a csv row, so
    the folder holds exactly the files it reads."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        yield f"{folder}\tmissing"
        return
    for entry in entries:
        try:
            st = entry.stat()
        except OSError:  # removed while we look: the next start sees the new state
            continue
        yield f"{entry.path}\t{st.st_size}\t{st.st_mtime_ns}"


def _voc_files(root: Path, split: str, lists: Mapping[str, str]) -> Iterator[str]:
    """The listed JPEGs and PNG masks (a devkit's JPEGImages holds many unlisted images)."""
    if split not in lists:
        return
    list_path = root / "ImageSets" / "Segmentation" / f"{lists[split]}.txt"
    try:
        ids = [line.strip() for line in list_path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return
    for i in ids:
        yield _stat_line(root / "JPEGImages" / f"{i}.jpg")
        yield _stat_line(root / "SegmentationClass" / f"{i}.png")
