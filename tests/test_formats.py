"""Readers of the Kaggle and VOC layouts: happy paths and one test per validation error."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vocflow.data.formats import SplitSource, read_kaggle_split, read_split, read_voc_split
from vocflow.errors import ConfigError, DataError

CLASSES = ("cat", "dog", "car")
TRAIN_IDS = ("7", "12", "007", "42")  # '007' and '7' must stay distinct strings
TRAIN_SHAPES = ((10, 12), (8, 8), (15, 9), (6, 20))
TEST_IDS = ("3", "5")
TEST_SHAPES = ((9, 11), (7, 13))


def _mask(shape: tuple[int, int], classes: list[int], seed: int) -> np.ndarray:
    """(H, W) uint8: background, one stripe per class index (1..C) and a void border pixel."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, np.uint8)
    for k, c in enumerate(classes):
        mask[k + 1, :] = c
    mask[0, 0] = 255
    mask[-1, rng.integers(shape[1])] = 0
    return mask


def _write_split(
    img_dir: Path, seg_dir: Path | None, prefix: str, ids, shapes, seed: int
) -> np.ndarray:
    """Write npy images (and masks); return the (N, C) labels that match the masks."""
    rng = np.random.default_rng(seed)
    img_dir.mkdir(parents=True, exist_ok=True)
    labels = np.zeros((len(ids), len(CLASSES)), np.uint8)
    for n, (i, shape) in enumerate(zip(ids, shapes, strict=True)):
        np.save(img_dir / f"{prefix}_{i}.npy", rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
        present = [c for c in range(1, len(CLASSES) + 1) if (n + c) % 2 == 0]
        labels[n, [c - 1 for c in present]] = 1
        if seg_dir is not None:
            seg_dir.mkdir(parents=True, exist_ok=True)
            np.save(seg_dir / f"{prefix}_{i}.npy", _mask(shape, present, seed + n))
    return labels


def _csv(path: Path, ids, labels: np.ndarray | None) -> None:
    frame = pd.DataFrame({"Id": list(ids)})
    if labels is not None:
        for c, name in enumerate(CLASSES):
            frame[name] = labels[:, c]
    frame.to_csv(path, index=False)


@pytest.fixture
def kaggle(tmp_path: Path) -> Path:
    """Kaggle layout: 4 labelled train images, 2 unlabelled test images, hidden test truth."""
    root = tmp_path / "kaggle"
    labels = _write_split(
        root / "train/img", root / "train/seg", "train", TRAIN_IDS, TRAIN_SHAPES, 0
    )
    _csv(root / "train/train_set.csv", TRAIN_IDS, labels)
    test_labels = _write_split(
        root / "test/img", tmp_path / "truth/seg", "test", TEST_IDS, TEST_SHAPES, 10
    )
    _csv(root / "test/test_set.csv", TEST_IDS, None)
    _csv(tmp_path / "truth/test_set.csv", TEST_IDS[::-1], test_labels[::-1])  # other row order
    return root


VOC_IDS = ("2009_000001", "2009_000002", "2009_000003")
VOC_NAMES = tuple(f"class{c}" for c in range(1, 21))


def _palette_png(path: Path, mask: np.ndarray) -> None:
    im = Image.fromarray(mask, mode="P")
    im.putpalette([v for c in range(256) for v in (c, 255 - c, (7 * c) % 256)])
    im.save(path)


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    """VOC devkit: 3 JPEGs + palette PNG masks, listed in ImageSets/Segmentation/train.txt."""
    root = tmp_path / "VOC2009"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(1)
    for n, i in enumerate(VOC_IDS):
        shape = (12 + n, 16)
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(
            root / "JPEGImages" / f"{i}.jpg"
        )
        _palette_png(root / "SegmentationClass" / f"{i}.png", _mask(shape, [n + 1, 15], n))
    (root / "JPEGImages" / "2009_999999.jpg").write_bytes(b"unlisted jpgs are fine in VOC")
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(VOC_IDS) + "\n")
    return root


def _snapshot(root: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _expect_error(root: Path, needle: str, read, exc=DataError) -> str:
    """Run ``read``; it must raise ``exc`` naming ``needle`` and leave the raw files unchanged."""
    before = _snapshot(root)
    with pytest.raises(exc) as info:
        read()
    message = str(info.value)
    assert needle in message
    assert "\n" not in message
    assert _snapshot(root) == before
    return message


# ----------------------------------------------------------------------------- kaggle: happy


def test_kaggle_train_reads_ids_classes_labels(kaggle: Path) -> None:
    src = read_kaggle_split(kaggle, "train")
    assert src.name == "train" and src.labelled and len(src) == 4
    assert src.ids == TRAIN_IDS
    assert src.class_names == CLASSES  # from the csv header, in order
    assert src.labels is not None and src.labels.dtype == np.uint8 and src.labels.shape == (4, 3)
    assert src.image_paths[2].name == "train_007.npy"
    for i, shape in enumerate(TRAIN_SHAPES):
        image, mask = src.read_image(i), src.read_mask(i)
        assert image.shape == (*shape, 3) and image.dtype == np.uint8
        assert mask.shape == shape and mask.dtype == np.uint8


def test_kaggle_test_unlabelled_by_default(kaggle: Path) -> None:
    src = read_kaggle_split(kaggle, "test")
    assert not src.labelled and src.labels is None and src.mask_paths is None
    assert src.ids == TEST_IDS and src.class_names == CLASSES  # names from the train header
    assert src.read_image(1).shape == (*TEST_SHAPES[1], 3)
    with pytest.raises(DataError, match="unlabelled"):
        src.read_mask(0)


def test_kaggle_test_labelled_from_labels_root(kaggle: Path) -> None:
    src = read_kaggle_split(kaggle, "test", labels_root=kaggle.parent / "truth")
    assert src.labelled and src.ids == TEST_IDS
    for i in range(2):  # rows re-ordered to the split's ids; labels agree with the masks
        assert src.read_mask(i).shape == TEST_SHAPES[i]


def test_read_split_dispatch(kaggle: Path, voc: Path) -> None:
    for fmt in ("kaggle", "synthetic"):
        assert read_split(fmt, kaggle, "train", class_names=None).ids == TRAIN_IDS
    src = read_split("voc", voc, "train", class_names=VOC_NAMES, voc_lists={"train": "train"})
    assert src.ids == VOC_IDS
    with pytest.raises(ConfigError, match="kaggle, synthetic, voc"):
        read_split("coco", kaggle, "train", class_names=None)
    with pytest.raises(ConfigError, match="voc_lists"):
        read_split("voc", voc, "test", class_names=VOC_NAMES, voc_lists={"train": "train"})
    # Default lists: test -> val.txt (VOC 2009 has no public segmentation test truth).
    (voc / "ImageSets/Segmentation/val.txt").write_text(VOC_IDS[0] + "\n")
    assert read_split("voc", voc, "test", class_names=VOC_NAMES).ids == VOC_IDS[:1]


def test_configured_class_names_must_match_header(kaggle: Path) -> None:
    assert read_kaggle_split(kaggle, "train", class_names=CLASSES).class_names == CLASSES
    _expect_error(
        kaggle,
        "train_set.csv",
        lambda: read_kaggle_split(kaggle, "train", class_names=("dog", "cat", "car")),
        ConfigError,
    )


# ----------------------------------------------------------------------------- kaggle: errors


def test_missing_root_points_at_config(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere.*data\.root.*config/config\.yaml"):
        read_kaggle_split(tmp_path / "nowhere", "train")


def test_missing_csv(kaggle: Path) -> None:
    (kaggle / "train/train_set.csv").unlink()
    _expect_error(kaggle, "train_set.csv", lambda: read_kaggle_split(kaggle, "train"))


def test_missing_img_dir(kaggle: Path) -> None:
    for p in (kaggle / "test/img").iterdir():
        p.unlink()
    (kaggle / "test/img").rmdir()
    _expect_error(kaggle, "img", lambda: read_kaggle_split(kaggle, "test"))


def test_csv_without_id_column(kaggle: Path) -> None:
    csv = kaggle / "train/train_set.csv"
    pd.read_csv(csv).rename(columns={"Id": "image"}).to_csv(csv, index=False)
    _expect_error(kaggle, "train_set.csv", lambda: read_kaggle_split(kaggle, "train"))


def test_duplicate_ids(kaggle: Path) -> None:
    csv = kaggle / "train/train_set.csv"
    frame = pd.read_csv(csv, dtype={"Id": str})
    pd.concat([frame, frame.iloc[[1]]]).to_csv(csv, index=False)
    msg = _expect_error(kaggle, "train_set.csv", lambda: read_kaggle_split(kaggle, "train"))
    assert "12" in msg


@pytest.mark.parametrize("bad", [2, -1, "", "yes", 0.5])
def test_non_binary_labels(kaggle: Path, bad) -> None:
    csv = kaggle / "train/train_set.csv"
    frame = pd.read_csv(csv, dtype={"Id": str}).astype({"dog": object})
    frame.loc[2, "dog"] = bad
    frame.to_csv(csv, index=False)
    msg = _expect_error(kaggle, "train_set.csv", lambda: read_kaggle_split(kaggle, "train"))
    assert "dog" in msg and "007" in msg


@pytest.mark.parametrize("sub", ["img", "seg"])
def test_csv_id_without_npy(kaggle: Path, sub: str) -> None:
    (kaggle / f"train/{sub}/train_42.npy").unlink()
    _expect_error(kaggle, "train_42.npy", lambda: read_kaggle_split(kaggle, "train"))


@pytest.mark.parametrize("sub", ["img", "seg"])
def test_orphan_npy_without_csv_row(kaggle: Path, sub: str) -> None:
    for k in range(5):
        np.save(kaggle / f"train/{sub}/train_9{k}.npy", np.zeros((2, 2), np.uint8))
    msg = _expect_error(kaggle, "train_90.npy", lambda: read_kaggle_split(kaggle, "train"))
    assert "5 in all" in msg and "train_93.npy" not in msg  # 3 named, then the count


def test_empty_split(kaggle: Path) -> None:
    for p in (kaggle / "test/img").iterdir():
        p.unlink()
    _csv(kaggle / "test/test_set.csv", [], None)
    _expect_error(kaggle, "test_set.csv", lambda: read_kaggle_split(kaggle, "test"))


def test_labels_root_with_other_ids(kaggle: Path) -> None:
    truth = kaggle.parent / "truth"
    frame = pd.read_csv(truth / "test_set.csv", dtype={"Id": str})
    frame.iloc[:1].to_csv(truth / "test_set.csv", index=False)
    _expect_error(kaggle.parent, "test_set.csv", lambda: read_kaggle_split(kaggle, "test", truth))


@pytest.mark.parametrize(
    ("array", "found"),
    [
        (np.zeros((10, 12, 3), np.float32), "float32"),
        (np.zeros((10, 12), np.uint8), "(10, 12)"),
        (np.zeros((10, 12, 4), np.uint8), "(10, 12, 4)"),
    ],
)
def test_bad_image_array(kaggle: Path, array: np.ndarray, found: str) -> None:
    np.save(kaggle / "train/img/train_7.npy", array)
    src = read_kaggle_split(kaggle, "train")  # content is checked on read, not up front
    msg = _expect_error(kaggle, "train_7.npy", lambda: src.read_image(0))
    assert found in msg


def test_mask_not_2d(kaggle: Path) -> None:
    np.save(kaggle / "train/seg/train_7.npy", np.zeros((10, 12, 1), np.uint8))
    src = read_kaggle_split(kaggle, "train")
    _expect_error(kaggle, "train_7.npy", lambda: src.read_mask(0))


def test_integer_mask_is_cast_when_values_fit(kaggle: Path) -> None:
    path = kaggle / "train/seg/train_7.npy"
    np.save(path, np.load(path).astype(np.int64))
    mask = read_kaggle_split(kaggle, "train").read_mask(0)
    assert mask.dtype == np.uint8


def test_float_or_overflowing_mask(kaggle: Path) -> None:
    path = kaggle / "train/seg/train_7.npy"
    np.save(path, np.load(path).astype(np.float64))
    src = read_kaggle_split(kaggle, "train")
    _expect_error(kaggle, "train_7.npy", lambda: src.read_mask(0))
    np.save(path, np.full((10, 12), 300, np.int32))
    msg = _expect_error(kaggle, "train_7.npy", lambda: src.read_mask(0))
    assert "300" in msg


def test_mask_shape_differs_from_image(kaggle: Path) -> None:
    np.save(kaggle / "train/seg/train_7.npy", np.zeros((10, 11), np.uint8))
    src = read_kaggle_split(kaggle, "train")
    msg = _expect_error(kaggle, "train_7.npy", lambda: src.read_mask(0))
    assert "(10, 11)" in msg and "(10, 12)" in msg


def test_mask_values_out_of_range(kaggle: Path) -> None:
    path = kaggle / "train/seg/train_12.npy"
    mask = np.load(path)
    mask[0, :2] = [4, 200]
    np.save(path, mask)
    src = read_kaggle_split(kaggle, "train")
    msg = _expect_error(kaggle, "train_12.npy", lambda: src.read_mask(1))
    assert "4" in msg and "200" in msg


def test_labels_disagree_with_mask(kaggle: Path, caplog: pytest.LogCaptureFixture) -> None:
    csv = kaggle / "train/train_set.csv"
    frame = pd.read_csv(csv, dtype={"Id": str})
    frame.loc[0, "cat"] = 1 - frame.loc[0, "cat"]
    frame.to_csv(csv, index=False)
    strict = read_kaggle_split(kaggle, "train")
    msg = _expect_error(kaggle, "train_7.npy", lambda: strict.read_mask(0))
    assert "Id 7" in msg and "cat" in msg and "set data.strict_labels: false" in msg
    lenient = read_kaggle_split(kaggle, "train", strict_labels=False)
    with caplog.at_level(logging.WARNING, logger="vocflow.data.formats"):
        assert lenient.read_mask(0).shape == TRAIN_SHAPES[0]
    # Already lenient: the warning does not ask to turn strictness off.
    assert "cat" in caplog.text and "strict_labels is false" in caplog.text
    assert "set data.strict_labels" not in caplog.text


def test_pickled_npy_is_refused(kaggle: Path) -> None:
    np.save(kaggle / "train/img/train_7.npy", np.array([{"a": 1}], dtype=object))
    src = read_kaggle_split(kaggle, "train")
    _expect_error(kaggle, "train_7.npy", lambda: src.read_image(0))


# ----------------------------------------------------------------------------- VOC


def test_voc_labels_derived_from_masks(voc: Path) -> None:
    src = read_voc_split(voc, "train", "train", VOC_NAMES)
    assert src.ids == VOC_IDS and src.class_names == VOC_NAMES and src.labelled
    assert src.labels is not None
    for n in range(3):  # mask holds classes n+1 and 15 -> label columns n and 14
        assert np.flatnonzero(src.labels[n]).tolist() == sorted({n, 14})
        image, mask = src.read_image(n), src.read_mask(n)
        assert image.shape == (12 + n, 16, 3) and image.dtype == np.uint8
        assert mask.shape == (12 + n, 16) and set(np.unique(mask)) <= {0, n + 1, 15, 255}


def test_voc_missing_list(voc: Path) -> None:
    _expect_error(voc, "val.txt", lambda: read_voc_split(voc, "val", "test", VOC_NAMES))


def test_voc_missing_jpeg(voc: Path) -> None:
    (voc / "JPEGImages/2009_000002.jpg").unlink()
    _expect_error(voc, "2009_000002.jpg", lambda: read_voc_split(voc, "train", "train", VOC_NAMES))


def test_voc_mask_values_beyond_classes(voc: Path) -> None:
    # With only 3 classes, the class-15 stripe is out of range.
    _expect_error(voc, "2009_000001.png", lambda: read_voc_split(voc, "train", "train", CLASSES))


def test_voc_rgb_mask_refused(voc: Path) -> None:
    Image.new("RGB", (16, 12)).save(voc / "SegmentationClass/2009_000001.png")
    _expect_error(voc, "2009_000001.png", lambda: read_voc_split(voc, "train", "train", VOC_NAMES))


def test_split_source_is_frozen(kaggle: Path) -> None:
    src: SplitSource = read_kaggle_split(kaggle, "train")
    with pytest.raises(AttributeError):
        src.name = "x"  # type: ignore[misc]
    assert src.labels is not None
    with pytest.raises(ValueError):
        src.labels[0, 0] = 1


# ----------------------------------------------------------------------------- broken files


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(("damage", "found"), [
    (lambda p: p.write_bytes(b""), "the file is empty (0 bytes)"),
    (_truncate, "not a complete .npy array"),
    (lambda p: p.write_bytes(b"\x93NUMPY garbage" * 9), "not a complete .npy array"),
    (lambda p: p.write_bytes(bytes(range(256))), "no header; vocflow refuses to unpickle"),
])
@pytest.mark.parametrize("sub", ["img", "seg"])
def test_broken_npy_names_the_file(kaggle: Path, damage, found: str, sub: str) -> None:
    damage(kaggle / f"train/{sub}/train_12.npy")
    src = read_kaggle_split(kaggle, "train")
    read = src.read_image if sub == "img" else src.read_mask
    msg = _expect_error(kaggle, f"train/{sub}/train_12.npy", lambda: read(1))
    assert found in msg and "replace the file" in msg
    assert "unsafely" not in msg and "allow_pickle" not in msg  # numpy's advice is not ours


def test_pickled_npy_message_gives_no_unsafe_advice(kaggle: Path) -> None:
    np.save(kaggle / "train/img/train_7.npy", np.array([{"a": 1}], dtype=object))
    src = read_kaggle_split(kaggle, "train")
    msg = _expect_error(kaggle, "train_7.npy", lambda: src.read_image(0))
    assert "refuses to unpickle" in msg and "unsafely" not in msg


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00garbage\x00" * 50])
def test_empty_or_garbage_csv(kaggle: Path, content: bytes) -> None:
    (kaggle / "train/train_set.csv").write_bytes(content)
    msg = _expect_error(kaggle, "train_set.csv", lambda: read_kaggle_split(kaggle, "train"))
    assert "fix the csv" in msg


@pytest.mark.parametrize(("damage", "found"), [
    (lambda p: p.write_bytes(b""), "the file is empty"),
    (_truncate, "not a complete image"),
    (lambda p: p.write_bytes(b"GIF89a not really" * 10), "not a complete image"),
])
def test_broken_jpeg(voc: Path, damage, found: str) -> None:
    damage(voc / "JPEGImages/2009_000002.jpg")
    src = read_voc_split(voc, "train", "train", VOC_NAMES)
    msg = _expect_error(voc, "2009_000002.jpg", lambda: src.read_image(1))
    assert found in msg


@pytest.mark.parametrize("damage", [lambda p: p.write_bytes(b""), _truncate])
def test_broken_png_mask(voc: Path, damage) -> None:
    damage(voc / "SegmentationClass/2009_000003.png")
    _expect_error(voc, "2009_000003.png", lambda: read_voc_split(voc, "train", "train", VOC_NAMES))


@pytest.mark.parametrize(("shape", "found"), [
    ((1, 1), "image is 1x1 px, below data.min_side = 16 px"),
    ((10, 2000), "image is 10x2000 px, below data.min_side"),
    ((20, 2000), "image is 20x2000 px, an aspect ratio of 100.0 above data.max_aspect = 10"),
])
def test_tiny_or_elongated_images_are_refused(kaggle: Path, shape, found: str) -> None:
    np.save(kaggle / "train/img/train_7.npy", np.zeros((*shape, 3), np.uint8))
    lenient = read_split("kaggle", kaggle, "train", class_names=None)
    assert lenient.read_image(0).shape == (*shape, 3)  # the readers' own default: no limit
    src = read_split("kaggle", kaggle, "train", class_names=None, min_side=16, max_aspect=10)
    msg = _expect_error(kaggle, "train_7.npy", lambda: src.read_image(0))
    assert found in msg


@pytest.mark.parametrize(("given", "found"), [
    (("cat", "dog"), "only in the csv: car; only in data.class_names: none"),
    (("cat", "dog", "bus"), "only in the csv: car; only in data.class_names: bus"),
    (("cat", "car", "dog"), "position 2 is 'dog' in the csv but 'car' in data.class_names"),
])
def test_class_name_mismatch_says_what_differs(kaggle: Path, given, found: str) -> None:
    msg = _expect_error(kaggle, "train_set.csv",
                        lambda: read_kaggle_split(kaggle, "train", class_names=given), ConfigError)
    assert found in msg and "or remove it" in msg
