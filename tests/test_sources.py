"""The ingest rule's view of the raw data: index files that must exist, and a fingerprint of
every raw file (path, size, mtime) that changes when one is replaced — without reading pixels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from vocflow.data.sources import split_inputs, split_sources
from vocflow.data.synthetic import make_synthetic
from vocflow.errors import ConfigError, DataError


@pytest.fixture
def kaggle(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    make_synthetic(root, n_train=6, n_test=3, seed=1, min_side=20, max_side=24)
    return root


def fingerprints(root: Path) -> dict[str, str]:
    labels = root / "test_labels"
    return {split: split_sources("kaggle", root, split, labels) for split in ("train", "test")}


def test_a_replaced_file_changes_only_its_split(kaggle: Path) -> None:
    before = fingerprints(kaggle)
    assert before == fingerprints(kaggle)  # stable
    path = kaggle / "train/img/train_3.npy"
    stat = path.stat()
    np.save(path, np.load(path)[::-1].copy())  # same size, new pixels
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    after = fingerprints(kaggle)
    assert after["train"] != before["train"] and after["test"] == before["test"]


@pytest.mark.parametrize("name", ["test/img/test_1.npy", "test_labels/seg/test_1.npy",
                                  "test_labels/test_set.csv"])
def test_test_split_tracks_images_and_its_truth(kaggle: Path, name: str) -> None:
    before = fingerprints(kaggle)
    path = kaggle / name
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 10**9))  # back in time counts too
    assert fingerprints(kaggle)["test"] != before["test"]


def test_added_or_removed_files_count(kaggle: Path) -> None:
    before = fingerprints(kaggle)["train"]
    (kaggle / "train/seg/train_0.npy").unlink()
    assert fingerprints(kaggle)["train"] != before


def test_synthetic_is_tracked_by_its_own_rule(kaggle: Path) -> None:
    assert split_sources("synthetic", kaggle, "train") == ""


def test_voc_tracks_listed_files_only(tmp_path: Path) -> None:
    root = tmp_path / "VOC"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True)
    for i in ("a", "b", "unlisted"):
        (root / "JPEGImages" / f"{i}.jpg").write_bytes(b"jpg " + i.encode())
        (root / "SegmentationClass" / f"{i}.png").write_bytes(b"png")
    (root / "ImageSets/Segmentation/train.txt").write_text("a\nb\n")
    before = split_sources("voc", root, "train")
    (root / "JPEGImages/unlisted.jpg").write_bytes(b"changed, but not read")
    assert split_sources("voc", root, "train") == before
    (root / "SegmentationClass/b.png").write_bytes(b"a new mask")
    assert split_sources("voc", root, "train") != before


def test_missing_index_files_name_the_config_key(kaggle: Path, tmp_path: Path) -> None:
    assert split_inputs("kaggle", kaggle, "test", kaggle / "test_labels") == [
        str(kaggle / "test/test_set.csv"), str(kaggle / "test_labels/test_set.csv")]
    with pytest.raises(DataError, match=r"nowhere does not exist .*set data\.root"):
        split_inputs("kaggle", tmp_path / "nowhere", "train")
    with pytest.raises(DataError, match=r"truth/test_set\.csv does not exist; set data\."
                                        r"test_labels"):
        split_inputs("kaggle", kaggle, "test", tmp_path / "truth")
    with pytest.raises(DataError, match=r"val\.txt does not exist; fix data\.voc_lists"):
        split_inputs("voc", kaggle, "test")
    with pytest.raises(ConfigError, match="no VOC list for split 'test'"):
        split_inputs("voc", kaggle, "test", voc_lists={"train": "train"})
    # The synthetic format's files are made by the workflow: not required up front.
    assert split_inputs("synthetic", tmp_path / "later", "train") == [
        str(tmp_path / "later/train/train_set.csv")]
