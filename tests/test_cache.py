"""build_cache / load_cache round trips on tiny Kaggle-layout and VOC datasets."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vocflow.data.cache import CACHE_FILES, Cache, build_cache, load_cache
from vocflow.data.formats import SplitSource, read_kaggle_split, read_voc_split
from vocflow.errors import ConfigError, DataError

CLASSES = ("cat", "dog", "car")
SHAPES = {"7": (10, 12), "12": (8, 8), "007": (15, 9), "42": (6, 20)}
TEST_SHAPES = {"3": (9, 11), "5": (7, 13)}
SIZE = 16


def _write_kaggle(root: Path, split: str, shapes: dict[str, tuple[int, int]], seed: int) -> None:
    """{root}/{split}/img|seg/{split}_{Id}.npy + csv; masks hold class n%3+1, 0 and void."""
    rng = np.random.default_rng(seed)
    (root / split / "img").mkdir(parents=True)
    labels = []
    for n, (i, (h, w)) in enumerate(shapes.items()):
        np.save(
            root / split / "img" / f"{split}_{i}.npy", rng.integers(0, 256, (h, w, 3), np.uint8)
        )
        mask = rng.choice(np.array([0, n % 3 + 1, 255], np.uint8), size=(h, w))
        mask[0, 0] = n % 3 + 1  # make sure the class is present
        labels.append([int(c == n % 3) for c in range(3)])
        if split == "train":
            (root / split / "seg").mkdir(exist_ok=True)
            np.save(root / split / "seg" / f"{split}_{i}.npy", mask)
    frame = pd.DataFrame({"Id": list(shapes)})
    if split == "train":
        frame[list(CLASSES)] = np.array(labels)
    frame.to_csv(root / split / f"{split}_set.csv", index=False)


@pytest.fixture
def kaggle(tmp_path: Path) -> Path:
    root = tmp_path / "kaggle"
    _write_kaggle(root, "train", SHAPES, 0)
    _write_kaggle(root, "test", TEST_SHAPES, 1)
    return root


def _build(source: SplitSource, out: Path) -> Cache:
    build_cache(source, out, SIZE)
    return load_cache(out)


def test_train_round_trip(kaggle: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = read_kaggle_split(kaggle, "train")
    with caplog.at_level(logging.INFO, logger="vocflow.data.cache"):
        cache = _build(source, tmp_path / "cache")
    assert "train" in caplog.text and "N=4" in caplog.text and f"image_size={SIZE}" in caplog.text
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(CACHE_FILES)
    assert len(cache) == 4 and cache.ids == list(SHAPES) and cache.class_names == list(CLASSES)
    assert cache.labelled
    np.testing.assert_array_equal(cache.labels, source.labels)
    assert cache.images.shape == (4, SIZE, SIZE, 3) and cache.images.dtype == np.uint8
    assert cache.masks.shape == (4, SIZE, SIZE) and cache.masks.dtype == np.uint8
    assert isinstance(cache.images, np.memmap) and isinstance(cache.masks, np.memmap)
    for i, (h, w) in enumerate(SHAPES.values()):
        assert (cache.heights[i], cache.widths[i]) == (h, w)
        np.testing.assert_array_equal(cache.original_image(i), source.read_image(i))
        original = source.read_mask(i)
        np.testing.assert_array_equal(cache.original_mask(i), original)
        # Nearest neighbour: the resized mask holds only values of the original (no blends).
        assert set(np.unique(cache.masks[i])) <= set(np.unique(original))
    np.testing.assert_array_equal(cache.original_image(-1), source.read_image(3))


def test_class_pixel_counts(kaggle: Path, tmp_path: Path) -> None:
    cache = _build(read_kaggle_split(kaggle, "train"), tmp_path / "cache")
    counts = cache.class_pixel_counts()
    assert counts.shape == (len(CLASSES) + 1,)
    masks = np.asarray(cache.masks)
    expected = [(masks == c).sum() for c in range(len(CLASSES) + 1)]
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == masks.size - (masks == 255).sum()  # void excluded
    np.testing.assert_array_equal(cache.class_pixel_counts(chunk=1), counts)


def test_unlabelled_test_split(kaggle: Path, tmp_path: Path) -> None:
    source = read_kaggle_split(kaggle, "test")
    cache = _build(source, tmp_path / "cache")
    assert not cache.labelled and cache.class_names == list(CLASSES)
    assert cache.labels.shape == (2, 3) and not cache.labels.any()
    assert (np.asarray(cache.masks) == 255).all()
    assert (cache.original_mask(1) == 255).all() and cache.original_mask(1).shape == (7, 13)
    np.testing.assert_array_equal(cache.original_image(1), source.read_image(1))
    assert not cache.class_pixel_counts().any()


def test_index_csv_columns(kaggle: Path, tmp_path: Path) -> None:
    build_cache(read_kaggle_split(kaggle, "train"), tmp_path / "cache", SIZE)
    frame = pd.read_csv(tmp_path / "cache/index.csv", dtype={"Id": str})
    assert list(frame.columns) == ["Id", "height", "width", "labelled", *CLASSES]
    assert frame["Id"].tolist() == list(SHAPES)  # '007' kept as a string


def test_rebuild_overwrites_and_leaves_no_temp_files(kaggle: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    build_cache(read_kaggle_split(kaggle, "train"), out, SIZE)
    cache = _build(read_kaggle_split(kaggle, "test"), out)
    assert len(cache) == 2 and cache.images.shape == (2, SIZE, SIZE, 3)
    assert sorted(p.name for p in out.iterdir()) == sorted(CACHE_FILES)


@pytest.mark.parametrize("name", CACHE_FILES)
def test_missing_cache_file(kaggle: Path, tmp_path: Path, name: str) -> None:
    out = tmp_path / "cache"
    build_cache(read_kaggle_split(kaggle, "train"), out, SIZE)
    (out / name).unlink()
    with pytest.raises(DataError, match=rf"{name}.*snakemake --forcerun ingest"):
        load_cache(out)


@pytest.mark.parametrize("name", CACHE_FILES)
@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_broken_cache_file(kaggle: Path, tmp_path: Path, name: str, damage: str) -> None:
    out = tmp_path / "cache"
    build_cache(read_kaggle_split(kaggle, "train"), out, SIZE)
    data = (out / name).read_bytes()
    (out / name).write_bytes({"empty": b"", "truncated": data[: len(data) // 2],
                              "garbage": b"x,y\n\x00\xff,\x01\n" * 40}[damage])
    with pytest.raises(DataError, match=rf"{name}.*snakemake --forcerun ingest") as info:
        load_cache(out)
    assert "\n" not in str(info.value) and "unsafely" not in str(info.value)


def test_mixed_cache_files_detected(kaggle: Path, tmp_path: Path) -> None:
    build_cache(read_kaggle_split(kaggle, "train"), tmp_path / "a", SIZE)
    build_cache(read_kaggle_split(kaggle, "test"), tmp_path / "b", SIZE)
    (tmp_path / "b/images.npy").replace(tmp_path / "a/images.npy")
    with pytest.raises(DataError, match="forcerun ingest"):
        load_cache(tmp_path / "a")


def test_bad_image_size(kaggle: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="image_size"):
        build_cache(read_kaggle_split(kaggle, "train"), tmp_path / "cache", 0)


def test_failed_build_leaves_no_complete_cache(kaggle: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    build_cache(read_kaggle_split(kaggle, "train"), out, SIZE)
    np.save(kaggle / "train/img/train_42.npy", np.zeros((6, 20), np.uint8))  # last item bad
    with pytest.raises(DataError, match="train_42.npy"):
        build_cache(read_kaggle_split(kaggle, "train"), out, SIZE)
    with pytest.raises(DataError, match="forcerun ingest"):
        load_cache(out)


def test_voc_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "VOC"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True)
    ids = ["a", "b"]
    for n, i in enumerate(ids):
        Image.fromarray(np.full((20 + n, 30, 3), 40 * n, np.uint8)).save(
            root / f"JPEGImages/{i}.jpg"
        )
        mask = np.zeros((20 + n, 30), np.uint8)
        mask[5:10, 5:20], mask[0] = 20, 255
        png = Image.fromarray(mask, mode="P")
        png.putpalette([v for c in range(256) for v in (c, c, c)])
        png.save(root / f"SegmentationClass/{i}.png")
    (root / "ImageSets/Segmentation/val.txt").write_text("a\nb\n")
    names = [f"c{k}" for k in range(1, 21)]
    source = read_voc_split(root, "val", "train", names)
    cache = _build(source, tmp_path / "cache")
    assert cache.labels[:, 19].tolist() == [1, 1] and cache.labels[:, :19].sum() == 0
    for i in range(2):
        np.testing.assert_array_equal(cache.original_image(i), source.read_image(i))
        assert set(np.unique(cache.masks[i])) <= {0, 20, 255}
    assert cache.class_pixel_counts().shape == (21,)


def _one_item_cache(image: np.ndarray, mask: np.ndarray) -> Cache:
    """A cache of one original (H, W) item; its cached 1 px copy is never read here."""
    h, w = mask.shape
    return Cache(ids=["a"], class_names=list(CLASSES), labelled=True,
                 labels=np.zeros((1, 3), np.uint8), images=np.zeros((1, 1, 1, 3), np.uint8),
                 masks=np.zeros((1, 1, 1), np.uint8), heights=np.array([h]),
                 widths=np.array([w]), orig_images=image.ravel(), orig_masks=mask.ravel())


def test_resampled_reads_the_originals() -> None:
    # Enlarging 2x2 -> 4x4: masks repeat each pixel into a 2x2 block (nearest);
    # shrinking 4x4 -> 2x2: images average each 2x2 block (INTER_AREA), masks keep one pixel.
    mask = np.array([[1, 2], [3, 255]], np.uint8)
    image = np.full((2, 2, 3), 77, np.uint8)
    images, masks = _one_item_cache(image, mask).resampled(4)
    assert images.shape == (1, 4, 4, 3) and (images == 77).all()
    np.testing.assert_array_equal(masks[0], np.kron(mask, np.ones((2, 2), np.uint8)))
    big = np.kron(np.array([[0, 40], [80, 120]], np.uint8), np.ones((2, 2), np.uint8))
    big_image = np.repeat(big[..., None], 3, axis=2)
    big[:2, :2] = [[0, 0], [0, 2]]  # one odd pixel: nearest keeps a block's corner
    images, masks = _one_item_cache(big_image, big).resampled(2, masks=True)
    np.testing.assert_array_equal(images[0, ..., 0], [[0, 40], [80, 120]])
    assert set(np.unique(masks)) <= {0, 2, 40, 80, 120}
    assert _one_item_cache(big_image, big).resampled(2, masks=False)[1] is None


def test_resampled_at_the_cache_side_is_the_cache(kaggle: Path, tmp_path: Path) -> None:
    cache = _build(read_kaggle_split(kaggle, "train"), tmp_path / "cache")
    images, masks = cache.resampled(SIZE)
    np.testing.assert_array_equal(images, cache.images)
    np.testing.assert_array_equal(masks, cache.masks)
    images, masks = cache.resampled(24, rows=np.array([2, 0]))
    assert images.shape == (2, 24, 24, 3) and masks.shape == (2, 24, 24)
    assert set(np.unique(masks)) <= set(np.unique(cache.original_mask(2))) | set(
        np.unique(cache.original_mask(0)))
