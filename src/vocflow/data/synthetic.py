"""A synthetic, VOC-like dataset in the Kaggle competition layout.

It is the offline default dataset: small enough that the whole study runs in minutes on a
laptop CPU, yet it has to reward the same things real VOC rewards. So each class is a
*combination* of a colour, a shape family and a texture, and the three are assigned with
different periods (6 colours, 7 shapes, 5 textures): for fewer than 30 classes any two classes
share at most one of the three, so no single cue (mean colour in particular) identifies a class.
Objects occlude each other, the background is textured clutter drawn from the same shape
families, and a void band surrounds every visible object as in the VOC masks.

Layout written under ``root``::

    train/train_set.csv           Id + one 0/1 column per class
    train/img/train_{Id}.npy      HxWx3 uint8 RGB
    train/seg/train_{Id}.npy      HxW uint8: 0 background, 1..C class, 255 void
    test/test_set.csv             Id only (the unlabelled split)
    test/img/test_{Id}.npy
    test_labels/test_set.csv      hidden truth of the test split, same format as train_set.csv
    test_labels/seg/test_{Id}.npy
    .vocflow-synthetic            marker: the generator arguments as JSON (valid YAML)
"""

from __future__ import annotations

import colorsys
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vocflow.artifacts import VOID
from vocflow.atomic import new_dir_mode, write_csv
from vocflow.errors import ConfigError, DataError

__all__ = ["VOC_CLASSES", "make_synthetic"]

logger = logging.getLogger(__name__)

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip

MARKER = ".vocflow-synthetic"
# Bumped whenever the drawing changes, so a marker tells which generator made a directory.
GENERATOR_VERSION = 1

# (hue, saturation, value) anchors; classes sharing an anchor have nearly equal mean colours.
_PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.00, 0.80, 0.80),  # red
    (0.14, 0.80, 0.85),  # yellow
    (0.33, 0.70, 0.65),  # green
    (0.56, 0.75, 0.80),  # blue
    (0.78, 0.60, 0.70),  # purple
    (0.07, 0.62, 0.60),  # brown: darker and duller than the rest, still clear of the background
)
_SHAPES = ("ellipse", "rectangle", "triangle", "diamond", "cross", "ring", "star")
_TEXTURES = ("solid", "stripes", "checker", "dots", "gradient")

# Relative object frequencies shaped like VOC 2009 (person dominates, cow/sheep are rare).
# Names outside this table get a seeded log-normal weight, so any class list works.
_VOC_WEIGHTS = {
    "aeroplane": 1.0, "bicycle": 0.85, "bird": 1.25, "boat": 0.85, "bottle": 1.1,
    "bus": 0.7, "car": 1.8, "cat": 1.3, "chair": 1.6, "cow": 0.5, "diningtable": 0.75,
    "dog": 1.5, "horse": 0.8, "motorbike": 0.8, "person": 5.0, "pottedplant": 0.9,
    "sheep": 0.5, "sofa": 0.8, "train": 0.8, "tvmonitor": 0.9,
}  # fmt: skip

# Fixed entropy for class statistics: they describe the "world", so every seed samples
# images from the same class definitions.
_STYLE_ENTROPY = 0x5C1A55
_SPLIT_CODES = {"train": 0, "test": 1}


@dataclass(frozen=True)
class ClassStyle:
    """The statistics one class's objects are drawn from."""

    hsv: tuple[float, float, float]
    shape: str
    shape_param: float
    aspect: float  # minor/major half-axis ratio, jittered per instance
    base_angle: float
    angle_spread: float  # radians; small for "upright" classes
    size_range: tuple[float, float]  # major axis as a fraction of the short image side
    texture: str
    tex_freq: float
    tex_angle: float
    tex_amp: float
    alt_colour_prob: float  # chance an instance takes another palette colour
    weight: float


def class_style(index: int, name: str) -> ClassStyle:
    """Deterministic statistics of class ``index``, valid for any number of classes."""
    rng = np.random.default_rng([_STYLE_ENTROPY, index])
    h, s, v = _PALETTE[index % len(_PALETTE)]
    shape = _SHAPES[index % len(_SHAPES)]
    lo = rng.uniform(0.15, 0.3)
    weight = _VOC_WEIGHTS.get(name, float(np.exp(rng.normal(0.0, 0.4))))
    return ClassStyle(
        hsv=(
            (h + rng.uniform(-0.02, 0.02)) % 1.0,
            float(np.clip(s + rng.uniform(-0.06, 0.06), 0.2, 1.0)),
            float(np.clip(v + rng.uniform(-0.06, 0.06), 0.3, 1.0)),
        ),
        shape=shape,
        shape_param=_shape_param(shape, rng),
        aspect=rng.uniform(0.45, 1.0),
        base_angle=rng.uniform(0.0, math.pi),
        angle_spread=rng.choice([0.15, 0.5, math.pi]),
        size_range=(lo, rng.uniform(max(lo + 0.15, 0.4), 0.6)),
        texture=_TEXTURES[index % len(_TEXTURES)],
        # At most ~2.4 periods across an object, so stripes survive the 64 px training size.
        tex_freq=rng.uniform(1.2, 2.4),
        tex_angle=rng.uniform(0.0, math.pi),
        tex_amp=rng.uniform(0.25, 0.45),
        alt_colour_prob=rng.uniform(0.0, 0.12),
        weight=weight,
    )


def _shape_param(shape: str, rng: np.random.Generator) -> float:
    # Only some families have a free parameter; others ignore it.
    if shape == "cross":
        return rng.uniform(0.22, 0.4)  # arm half-width
    if shape == "ring":
        return rng.uniform(0.45, 0.65)  # inner radius
    if shape == "star":
        return float(rng.integers(4, 7))  # number of points
    return 0.0


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray, param: float) -> np.ndarray:
    """Inside-test in the object's normalised frame, where the shape fits in [-1, 1]^2."""
    au, av = np.abs(u), np.abs(v)
    r2 = u * u + v * v
    tests: dict[str, Callable[[], np.ndarray]] = {
        "ellipse": lambda: r2 <= 1.0,
        "rectangle": lambda: (au <= 1.0) & (av <= 1.0),
        "triangle": lambda: (v <= 1.0) & (au <= (v + 1.0) / 2.0),
        "diamond": lambda: au + av <= 1.0,
        "cross": lambda: ((au <= param) & (av <= 1.0)) | ((av <= param) & (au <= 1.0)),
        "ring": lambda: (r2 <= 1.0) & (r2 >= param * param),
        # Radius swings between 1 (tips) and 0.45 (valleys) ``param`` times per turn.
        "star": lambda: np.sqrt(r2) <= 0.725 + 0.275 * np.cos(param * np.arctan2(v, u)),
    }
    return tests[shape]()


def _texture(style: ClassStyle, u: np.ndarray, v: np.ndarray, phase: float) -> np.ndarray:
    """Brightness modulation in [-1, 1] (made zero-mean later, so it keeps the mean colour)."""
    s = u * math.cos(style.tex_angle) + v * math.sin(style.tex_angle)
    f = style.tex_freq
    if style.texture == "stripes":
        return np.sign(np.sin(math.pi * f * s + phase))
    if style.texture == "checker":
        return np.sign(np.sin(math.pi * f * u + phase) * np.sin(math.pi * f * v))
    if style.texture == "dots":
        # Coarser than the other textures: dots must survive downscaling to ~64 px.
        qu = np.mod(u * f * 0.7 + phase, 1.0) - 0.5
        qv = np.mod(v * f * 0.7, 1.0) - 0.5
        return np.where(qu * qu + qv * qv < 0.09, 1.0, -1.0)
    if style.texture == "gradient":
        return np.clip(s, -1.0, 1.0)
    return np.zeros_like(s)


def _hsv_rgb(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


def _object_frame(
    shape_hw: tuple[int, int], centre: tuple[float, float], half: tuple[float, float], angle: float
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """Bounding-box slices plus normalised rotated coordinates (u, v) inside them."""
    h, w = shape_hw
    cy, cx = centre
    reach = 1.42 * max(half)  # a rotated unit square fits in this radius
    y0, y1 = max(0, int(cy - reach)), min(h, int(cy + reach) + 1)
    x0, x1 = max(0, int(cx - reach)), min(w, int(cx + reach) + 1)
    yy, xx = np.ogrid[y0:y1, x0:x1]
    dy, dx = yy - cy, xx - cx
    c, s = math.cos(angle), math.sin(angle)
    u = (dx * c + dy * s) / half[0]
    v = (dy * c - dx * s) / half[1]
    return (slice(y0, y1), slice(x0, x1)), u, v


def _instance_colour(style: ClassStyle, rng: np.random.Generator) -> np.ndarray:
    h, s, v = style.hsv
    if rng.random() < style.alt_colour_prob:
        h = _PALETTE[int(rng.integers(len(_PALETTE)))][0]
    h += rng.uniform(-0.025, 0.025)
    s = float(np.clip(s * rng.uniform(0.85, 1.1), 0.0, 1.0))
    v = float(np.clip(v * rng.uniform(0.8, 1.15), 0.0, 1.0))
    return _hsv_rgb(h, s, v)


def _pick_centre(
    rng: np.random.Generator, h: int, w: int, previous: list[tuple[float, float]]
) -> tuple[float, float]:
    # Objects often cluster (people on horses, bottles on tables); placing some next to an
    # earlier one makes occlusion common instead of rare.
    if previous and rng.random() < 0.45:
        py, px = previous[int(rng.integers(len(previous)))]
        dy, dx = rng.normal(0.0, 0.15 * min(h, w), size=2)
        y = float(np.clip(py + dy, 0.05 * h, 0.95 * h))
        return y, float(np.clip(px + dx, 0.05 * w, 0.95 * w))
    # Centres may sit near the border so objects get truncated, as in real photos.
    return rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w


def _draw_object(
    img: np.ndarray,
    seg: np.ndarray,
    style: ClassStyle,
    value: int,
    rng: np.random.Generator,
    centre: tuple[float, float],
) -> None:
    """Paint one object over whatever is there (painter's order) and claim its mask pixels."""
    h, w = seg.shape
    major = rng.uniform(*style.size_range) * min(h, w) / 2.0
    aspect = float(np.clip(style.aspect * rng.uniform(0.85, 1.15), 0.3, 1.0))
    angle = style.base_angle + rng.uniform(-style.angle_spread, style.angle_spread)
    box, u, v = _object_frame((h, w), centre, (major, major * aspect), angle)
    inside = _shape_mask(style.shape, u, v, style.shape_param)
    if not inside.any():
        return
    pattern = np.broadcast_to(_texture(style, u, v, rng.uniform(0, 2 * math.pi)), inside.shape)
    pattern = pattern - pattern[inside].mean()
    light = rng.uniform(-0.12, 0.12, size=2)
    shade = 1.0 + style.tex_amp * pattern + light[0] * u + light[1] * v
    rgb = _instance_colour(style, rng) * shade[..., None]
    img[box][inside] = np.clip(rgb[inside], 0.0, 255.0)
    seg[box][inside] = value


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Bilinearly upsampled coarse noise, HxWx3 in [-1, 1]: cheap smooth clutter."""
    grid = rng.uniform(-1.0, 1.0, size=(cells + 1, cells + 1, 3))
    ys = np.linspace(0.0, cells, h)
    xs = np.linspace(0.0, cells, w)
    y0 = np.minimum(ys.astype(int), cells - 1)
    x0 = np.minimum(xs.astype(int), cells - 1)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Low-saturation base colour + smooth noise + a gradient + faint unlabelled shapes."""
    base = _hsv_rgb(rng.random(), rng.uniform(0.05, 0.35), rng.uniform(0.35, 0.75))
    img = base + rng.uniform(15, 35) * _smooth_field(rng, h, w, int(rng.integers(2, 7)))
    yy, xx = np.ogrid[0:h, 0:w]
    gy, gx = rng.uniform(-30, 30, size=2)
    img = img + (gy * (yy / h - 0.5) + gx * (xx / w - 0.5))[..., None]
    for _ in range(int(rng.integers(2, 7))):
        _faint_shape(img, rng)
    return img


def _faint_shape(img: np.ndarray, rng: np.random.Generator) -> None:
    # Same shape families as the classes but blended at low alpha in random colours: the
    # model must not fire on outline alone.
    h, w = img.shape[:2]
    half = rng.uniform(0.05, 0.25, size=2) * min(h, w)
    centre = (rng.uniform(0, h), rng.uniform(0, w))
    box, u, v = _object_frame((h, w), centre, (half[0], half[1]), rng.uniform(0, math.pi))
    shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
    inside = _shape_mask(shape, u, v, 0.5 if shape != "star" else 5.0)
    alpha = rng.uniform(0.12, 0.3)
    colour = _hsv_rgb(rng.random(), rng.uniform(0.2, 0.9), rng.uniform(0.2, 0.95))
    region = img[box]
    region[inside] = (1 - alpha) * region[inside] + alpha * colour


def void_band(seg: np.ndarray) -> np.ndarray:
    """Mark every pixel whose 3x3 neighbourhood holds another label as void (2 px borders)."""
    padded = np.pad(seg, 1, mode="edge")
    h, w = seg.shape
    border = np.zeros(seg.shape, dtype=bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            border |= padded[dy : dy + h, dx : dx + w] != seg
    out = seg.copy()
    out[border] = VOID
    return out


def _image_size(rng: np.random.Generator, min_side: int, max_side: int) -> tuple[int, int]:
    """Mostly VOC's 4:3 landscape/portrait frames, sometimes a free aspect ratio."""
    if rng.random() < 0.35:
        h, w = rng.integers(min_side, max_side + 1, size=2)
        return int(h), int(w)
    long_lo = min(max_side, math.ceil(min_side * 4 / 3))
    long = int(rng.integers(long_lo, max_side + 1))
    short = int(np.clip(round(long * 0.75), min_side, max_side))
    return (short, long) if rng.random() < 0.7 else (long, short)


def _object_classes(
    rng: np.random.Generator, probs: np.ndarray, max_objects: int, forced: int | None
) -> list[int]:
    """Classes in painter's order (first drawn first); the forced class goes on top."""
    counts = np.arange(1, max_objects + 1)
    count_p = 0.7 ** (counts - 1)  # one object is most common, as in VOC
    k = int(rng.choice(counts, p=count_p / count_p.sum()))
    classes = [int(c) for c in rng.choice(len(probs), size=k, p=probs)]
    if forced is not None:
        classes[-1] = forced
    return classes


def render_image(
    rng: np.random.Generator,
    styles: Sequence[ClassStyle],
    min_side: int,
    max_side: int,
    max_objects: int,
    forced: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One (image uint8 HxWx3, mask uint8 HxW) pair."""
    h, w = _image_size(rng, min_side, max_side)
    img = _background(rng, h, w)
    seg = np.zeros((h, w), dtype=np.uint8)
    weights = np.array([s.weight for s in styles])
    centres: list[tuple[float, float]] = []
    for c in _object_classes(rng, weights / weights.sum(), max_objects, forced):
        centres.append(_pick_centre(rng, h, w, centres))
        _draw_object(img, seg, styles[c], c + 1, rng, centres[-1])
    img += rng.normal(0.0, rng.uniform(2.0, 6.0), size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), void_band(seg)


def labels_from_mask(seg: np.ndarray, n_classes: int) -> np.ndarray:
    """0/1 vector: class c is present iff some pixel has value c + 1."""
    present = np.zeros(n_classes + 1, dtype=bool)
    values = np.unique(seg)
    present[values[(values >= 1) & (values <= n_classes)]] = True
    return present[1:].astype(np.int64)


def _write_split(
    out: Path, split: str, n: int, seed: int, styles: Sequence[ClassStyle], args: dict
) -> pd.DataFrame:
    """Write one split's images and masks; return its label table (index ``Id``)."""
    img_dir = out / split / "img"
    seg_dir = out / ("train" if split == "train" else "test_labels") / "seg"
    img_dir.mkdir(parents=True)
    seg_dir.mkdir(parents=True)
    rows = []
    for i in range(n):
        # One stream per image: image i does not change when n_train/n_test change.
        rng = np.random.default_rng([seed, _SPLIT_CODES[split], i])
        # Train images 0..C-1 each carry their class on top, so every class is present.
        forced = i if split == "train" and i < len(styles) else None
        img, seg = render_image(
            rng, styles, args["min_side"], args["max_side"], args["max_objects"], forced
        )
        # Plain np.save: the whole directory is renamed into place at the end, so per-file
        # atomic writes would buy nothing here.
        np.save(img_dir / f"{split}_{i}.npy", img)
        np.save(seg_dir / f"{split}_{i}.npy", seg)
        rows.append(labels_from_mask(seg, len(styles)))
    table = np.array(rows, dtype=np.int64).reshape(n, len(styles))
    index = pd.RangeIndex(n, name="Id")
    return pd.DataFrame(table, columns=list(args["class_names"]), index=index)


_INT_ARGS = ("n_train", "n_test", "seed", "min_side", "max_side", "max_objects")


def _validate(args: dict) -> None:
    for key in _INT_ARGS:
        # bool is an int subclass but True as a count is surely a config slip.
        if isinstance(args[key], bool) or not isinstance(args[key], int | np.integer):
            raise ConfigError(f"{key} must be an integer, got {args[key]!r}")
        args[key] = int(args[key])  # numpy ints would not serialise into the marker
    names = args["class_names"]
    if isinstance(names, str) or len(names) == 0:
        raise ConfigError("class_names must be a non-empty list of class names")
    if any(not isinstance(n, str) or not n or n == "Id" for n in names):
        raise ConfigError(f"class_names must be non-empty strings other than 'Id', got {names}")
    if len(set(names)) != len(names):
        raise ConfigError(f"class_names must be unique, got {names}")
    if args["n_train"] < 1 or args["n_test"] < 0:
        raise ConfigError(
            f"need n_train >= 1 and n_test >= 0, got n_train={args['n_train']}, "
            f"n_test={args['n_test']}"
        )
    if not 1 <= args["min_side"] <= args["max_side"]:
        raise ConfigError(
            f"need 1 <= min_side <= max_side, got {args['min_side']} and {args['max_side']}"
        )
    if args["max_objects"] < 1:
        raise ConfigError(f"max_objects must be >= 1, got {args['max_objects']}")
    if args["seed"] < 0:
        raise ConfigError(f"seed must be >= 0, got {args['seed']}")


def _check_root(root: Path) -> bool:
    """True if ``root`` holds an earlier synthetic dataset; raise if it holds anything else."""
    if not root.exists():
        return False
    if not root.is_dir():
        raise DataError(f"{root} exists and is not a directory; choose an empty directory")
    if (root / MARKER).is_file():
        return True
    # Snakemake creates the output's parent folders before the job: empty folders are not data.
    if any(not p.is_dir() for p in root.rglob("*")):
        raise DataError(
            f"{root} is not empty and holds no {MARKER} marker; refusing to write a synthetic "
            "dataset there, choose an empty directory"
        )
    return False


def _swap_into_place(tmp: Path, root: Path, was_marked: bool) -> None:
    """Move the finished dataset onto ``root``; the old one is moved aside before deletion."""
    if not root.exists():
        os.rename(tmp, root)
        return
    old = tmp.with_name(tmp.name.replace(".tmp-", ".old-", 1))
    os.rename(root, old)
    os.rename(tmp, root)
    if was_marked:
        shutil.rmtree(old)
    else:
        # Held only empty folders: rmdir cannot delete anything a user put there meanwhile.
        for folder in sorted(old.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            folder.rmdir()
        old.rmdir()


def make_synthetic(
    root: str | Path,
    *,
    class_names: Sequence[str] | None = VOC_CLASSES,
    n_train: int = 300,
    n_test: int = 60,
    seed: int = 0,
    min_side: int = 96,
    max_side: int = 160,
    max_objects: int = 4,
) -> None:
    """Write a synthetic VOC-like dataset under ``root`` (see the module docstring);
    ``class_names`` None: the 20 VOC classes."""
    class_names = VOC_CLASSES if class_names is None else class_names
    args = {
        "generator_version": GENERATOR_VERSION,
        "class_names": list(class_names) if not isinstance(class_names, str) else class_names,
        "n_train": n_train, "n_test": n_test, "seed": seed,
        "min_side": min_side, "max_side": max_side, "max_objects": max_objects,
    }  # fmt: skip
    _validate(args)
    start = time.perf_counter()
    root = Path(root).resolve()
    was_marked = _check_root(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    tmp.chmod(new_dir_mode())  # mkdtemp makes it private; the data is meant to be shared
    try:
        _write_all(tmp, args)
        _swap_into_place(tmp, root, was_marked)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        "wrote synthetic dataset to %s: %d train + %d test images, %d classes, in %.1f s",
        root, n_train, n_test, len(args["class_names"]), time.perf_counter() - start,
    )  # fmt: skip


def _write_all(out: Path, args: dict) -> None:
    styles = [class_style(i, name) for i, name in enumerate(args["class_names"])]
    train = _write_split(out, "train", args["n_train"], args["seed"], styles, args)
    test = _write_split(out, "test", args["n_test"], args["seed"], styles, args)
    write_csv(out / "train" / "train_set.csv", train, index=True)
    write_csv(out / "test_labels" / "test_set.csv", test, index=True)
    write_csv(out / "test" / "test_set.csv", pd.DataFrame({"Id": test.index}))
    # Marker last: it is what later runs trust as "this directory is ours to replace".
    (out / MARKER).write_text(json.dumps(args, indent=2) + "\n")
