"""Augmentation presets, batch normalisation and the batched, seeded cache loader."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vocflow.data.cache import load_cache
from vocflow.data.dataset import BatchKey, CacheBatches, EpochBatches, unwrap
from vocflow.data.transforms import (
    MEAN,
    PRESETS,
    STD,
    VOID,
    build_transform,
    normalize,
    normalize_batch,
)
from vocflow.errors import ConfigError

GEOMETRIC = (A.Affine, A.ElasticTransform, A.GridDistortion)


def always(preset: str, size: int) -> A.Compose:
    """``preset`` with every step forced on (p = 1)."""
    compose = build_transform(preset, size)
    assert compose is not None
    for step in compose.transforms:
        step.p = 1.0
    return compose


def test_unknown_preset_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown augmentation preset 'heavy'.*full"):
        build_transform("heavy", 32)


def test_full_preset_has_the_studys_steps_and_parameters() -> None:
    steps = {type(t).__name__: t for t in build_transform("full", 64).transforms}
    assert set(steps) == {"HorizontalFlip", "RandomRotate90", "Affine",
                          "ElasticTransform", "GridDistortion", "GaussNoise",
                          "RandomBrightnessContrast"}
    assert (steps["ElasticTransform"].alpha, steps["ElasticTransform"].sigma) == (1.0, 50.0)
    assert steps["GridDistortion"].distort_limit == (-0.3, 0.3)
    strong = {type(t).__name__ for t in build_transform("strong", 64).transforms}
    assert "RandomRotate90" not in strong and "ElasticTransform" in strong
    assert build_transform("none", 64) is None
    assert build_transform("none", 64, crop=64) is None  # a crop of the whole image


@pytest.mark.parametrize("preset", sorted(set(PRESETS) - {"none"}))
def test_geometric_steps_use_nearest_masks_and_void_fill(preset: str) -> None:
    for step in build_transform(preset, 32).transforms:
        if isinstance(step, GEOMETRIC):
            assert step.mask_interpolation == cv2.INTER_NEAREST and step.fill_mask == VOID


@pytest.mark.parametrize("preset", sorted(set(PRESETS) - {"none"}))
def test_presets_keep_mask_labels_exact(preset: str) -> None:
    # Two classes in halves: a nearest-neighbour mask can only hold 3, 7 and void afterwards
    # (any linear blend would create values in between).
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.full((32, 32), 3, np.uint8)
    mask[:, 16:] = 7
    compose = always(preset, 32)
    seen = set()
    for seed in range(8):
        compose.set_random_seed(seed)
        out = compose(image=image, mask=mask)
        assert out["image"].shape == (32, 32, 3) and out["image"].dtype == np.uint8
        assert out["mask"].shape == (32, 32)
        seen |= set(np.unique(out["mask"]).tolist())
    assert seen <= {3, 7, VOID} and {3, 7} <= seen


def test_affine_fills_outside_pixels_with_void() -> None:
    step = A.Affine(translate_px={"x": 8, "y": 0}, fill=0, fill_mask=VOID, p=1.0)
    out = A.Compose([step], seed=0)(image=np.full((16, 16, 3), 9, np.uint8),
                                    mask=np.zeros((16, 16), np.uint8))
    assert (out["mask"][:, :8] == VOID).all() and (out["mask"][:, 8:] == 0).all()
    assert (out["image"][:, :8] == 0).all()


def test_crop_takes_aligned_windows_at_the_images_scale() -> None:
    compose = build_transform("none", 48, crop=32)
    assert compose is not None
    rows = np.repeat(np.arange(48, dtype=np.uint8)[:, None], 48, axis=1)
    image, mask = np.stack([rows, rows.T, rows], axis=-1), rows.T.copy()
    corners = set()
    for seed in range(6):
        compose.set_random_seed(seed)
        out = compose(image=image, mask=mask)
        assert out["image"].shape == (32, 32, 3) and out["mask"].shape == (32, 32)
        top, left = int(out["image"][0, 0, 0]), int(out["image"][0, 0, 1])
        # a window, not a resize: consecutive rows/columns, image and mask aligned
        np.testing.assert_array_equal(out["image"][:, 0, 0], np.arange(top, top + 32))
        np.testing.assert_array_equal(out["mask"][0], np.arange(left, left + 32))
        corners.add((top, left))
    assert len(corners) > 1
    with pytest.raises(ConfigError, match="crop_size 64 must be below"):
        build_transform("light", 48, crop=64)


def test_normalize_batch_matches_imagenet_statistics() -> None:
    x = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (2, 8, 8, 3), np.uint8))
    expected = (x.numpy().astype(np.float64) / 255 - MEAN) / STD  # (2, 8, 8, 3)
    out = normalize_batch(x)
    assert out.shape == (2, 3, 8, 8) and out.dtype == torch.float32 and out.is_contiguous()
    np.testing.assert_allclose(out.numpy(), expected.transpose(0, 3, 1, 2), atol=1e-5)
    np.testing.assert_allclose(normalize(x.numpy()), out.numpy(), atol=1e-6)
    last = normalize_batch(x, channels_last=True)
    assert last.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(last, out, atol=1e-6, rtol=0)
    assert normalize_batch(x, size=12).shape == (2, 3, 12, 12)


def test_epoch_batches_are_seeded_per_epoch() -> None:
    sampler = EpochBatches(10, 4, seed=5)
    first = [k.positions.tolist() for k in sampler]
    assert len(sampler) == 3 and sorted(sum(first, [])) == list(range(10))
    assert first == [k.positions.tolist() for k in sampler]  # same epoch, same order
    sampler.set_epoch(2, start=1)
    later = list(sampler)
    assert [k.batch for k in later] == [1, 2] and later[0].epoch == 2
    sampler.set_epoch(2)
    assert [k.positions.tolist() for k in sampler][1:] == [k.positions.tolist() for k in later]
    assert [k.positions.tolist() for k in sampler] != first
    # a trailing single item is dropped when training (BatchNorm), kept when evaluating
    assert len(EpochBatches(9, 4)) == 2 and len(EpochBatches(9, 4, shuffle=False)) == 3
    assert [len(k.positions) for k in EpochBatches(9, 4, shuffle=False)] == [4, 4, 1]


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_cache_batches(tiny_data: dict, task: str) -> None:
    cache = load_cache(tiny_data["train"])
    idx = np.arange(3, 13)
    plain = CacheBatches(cache.images, cache.masks, cache.labels, idx, task)
    x, y = plain.__getitems__(BatchKey(1, 0, np.array([0, 2])))
    assert x.dtype == torch.uint8 and np.array_equal(x.numpy(), cache.images[[3, 5]])
    if task == "segmentation":
        assert np.array_equal(y.numpy(), cache.masks[[3, 5]])
    else:
        assert y.dtype == torch.float32 and np.array_equal(y.numpy(), cache.labels[[3, 5]])
    aug = CacheBatches(cache.images, cache.masks, cache.labels, idx, task,
                       build_transform("full", 32), seed=0)
    key = BatchKey(1, 0, np.arange(6))
    a, b = aug.__getitems__(key), aug.__getitems__(key)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))  # seeded by the key
    other = aug.__getitems__(BatchKey(2, 0, np.arange(6)))
    assert not torch.equal(a[0], other[0])


def test_flip_moves_image_and_mask_together(tiny_data: dict) -> None:
    cache = load_cache(tiny_data["train"])
    flip = A.Compose([A.HorizontalFlip(p=1.0)])
    data = CacheBatches(cache.images, cache.masks, cache.labels, np.arange(4), "segmentation",
                        flip)
    x, y = data.__getitems__(BatchKey(1, 0, np.arange(4)))
    assert np.array_equal(x.numpy(), cache.images[:4, :, ::-1])
    assert np.array_equal(y.numpy(), cache.masks[:4, :, ::-1])


def test_loader_batches_do_not_depend_on_workers(tiny_data: dict) -> None:
    cache = load_cache(tiny_data["train"])
    data = CacheBatches(cache.images, cache.masks, cache.labels, np.arange(20), "segmentation",
                        build_transform("full", 32), seed=1)

    def epoch_batches(workers: int) -> list[tuple[torch.Tensor, ...]]:
        sampler = EpochBatches(20, 8, seed=1)
        loader = DataLoader(data, batch_sampler=sampler, collate_fn=unwrap, num_workers=workers,
                            persistent_workers=workers > 0)
        out = []
        for epoch in (1, 2):
            sampler.set_epoch(epoch)
            out += list(loader)
        return out

    serial, parallel = epoch_batches(0), epoch_batches(2)
    assert len(serial) == 6
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(serial[0][0], serial[3][0])  # epochs differ
