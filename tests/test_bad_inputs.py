"""Bad input, as a user meets it: the real workflow on a tiny dataset, one broken thing per case.

Every case must stop the workflow with a non-zero exit and one line naming the file or key and
what to do — in the terminal and in the failing rule's log (hence in a SLURM job's log), with no
traceback — and must leave every raw data file byte for byte as it was.

Speed: cases share three prepared workdirs (a Kaggle-layout dataset, a VOC devkit, and a
trained study up to selection), each case runs in its own copy and targets only the rule that
fails, and the cases run side by side (one Snakemake per CPU), each forked from this process
once Snakemake and the workflow's modules are imported (helpers.run_snakemake_many).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import copy_workflow, merge_config, run_snakemake_many
from PIL import Image

from vocflow.data.cache import load_cache
from vocflow.data.synthetic import make_synthetic

pytestmark = pytest.mark.workflow

INGEST = "results/data/{}/index.csv"
INGEST_LOG = "results/logs/ingest_{}.log"
CELL = "results/classification/cnn/bce/fold0"


@dataclass(frozen=True)
class Case:
    id: str
    edit: Callable[[Path], None]  # breaks one thing in a copy of the template workdir
    expect: str  # part of the one line: the file or key, and what is wrong with it
    template: str = "kaggle"  # kaggle | voc | trained
    split: str = "train"
    target: str = ""  # default: the split's cache
    log: str | None = ""  # the failing rule's log; default: the split's ingest; None: no job
    overlays: tuple[str, ...] = ()  # .test/config files merged over the template's config

    def run_target(self) -> str:
        return self.target or INGEST.format(self.split)

    def log_path(self) -> str | None:
        return INGEST_LOG.format(self.split) if self.log == "" else self.log


# ----------------------------------------------------------------------------- edits


def write(rel: str, content: bytes) -> Callable[[Path], None]:
    return lambda w: (w / rel).write_bytes(content)


def cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def truncate(rel: str) -> Callable[[Path], None]:
    return lambda w: cut(w / rel)


def output(rel: str, damage: bytes | Callable[[Path], None]) -> Callable[[Path], None]:
    """Damage an output of an earlier rule in place, keeping its mtime: Snakemake must not
    re-make it (or what it feeds) before the rule that reads it fails."""
    def edit(w: Path) -> None:
        path = w / rel
        st = path.stat()
        if callable(damage):
            damage(path)
        else:
            path.write_bytes(damage)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return edit


def npy(rel: str, make: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    return lambda w: np.save(w / rel, make(np.load(w / rel)))


def csv(rel: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    def edit(w: Path) -> None:
        frame = pd.read_csv(w / rel, dtype={"Id": str})
        change(frame).to_csv(w / rel, index=False)
    return edit


def label(value: object) -> Callable[[Path], None]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype({"cat": object})
        frame.loc[3, "cat"] = value
        return frame
    return csv("data/train/train_set.csv", change)


def remove(rel: str) -> Callable[[Path], None]:
    return lambda w: shutil.rmtree(w / rel) if (w / rel).is_dir() else (w / rel).unlink()


def flip_label(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[3, "cat"] = 1 - int(frame.loc[3, "cat"])
    return frame


def mask_values(mask: np.ndarray) -> np.ndarray:
    mask = mask.copy()
    mask[0, :2] = [21, 37]
    return mask


def other_ids(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[1:]


def nothing(w: Path) -> None:
    pass


def rgb_png(w: Path) -> None:
    path = w / "data/VOC/SegmentationClass/0.png"
    Image.open(path).convert("RGB").save(path)


def png_values(w: Path) -> None:
    path = w / "data/VOC/SegmentationClass/0.png"
    mask = np.asarray(Image.open(path)).copy()
    mask[0, 0] = 21
    palette_png(path, mask)


GARBAGE = bytes(range(256)) * 8
IMG, SEG = "data/train/img/train_3.npy", "data/train/seg/train_3.npy"
TRAIN_CSV = "data/train/train_set.csv"


def pickled_checkpoint(path: Path) -> None:
    torch.save({"meta": Path("not/a/tensor")}, path)


CASES = [
    # --- raw npy files: zero-byte, truncated, garbage, pickled, wrong dtypes and shapes
    Case("image_zero_byte", write(IMG, b""), "train_3.npy: the file is empty (0 bytes)"),
    Case("mask_zero_byte", write(SEG, b""), "seg/train_3.npy: the file is empty (0 bytes)"),
    Case("image_truncated", truncate(IMG), "train_3.npy: not a complete .npy array"),
    Case("mask_truncated", truncate(SEG), "seg/train_3.npy: not a complete .npy array"),
    Case("image_garbage", write(IMG, GARBAGE), "train_3.npy: not a plain .npy array"),
    Case("image_pickled", npy(IMG, lambda a: np.array([{"a": 1}], dtype=object)),
         "holds Python objects besides plain arrays"),
    Case("image_float32", npy(IMG, lambda a: a.astype(np.float32)), "dtype float32, expected"),
    Case("image_2d", npy(IMG, lambda a: a[..., 0]), "train_3.npy: image has shape"),
    Case("image_4_channels", npy(IMG, lambda a: np.dstack([a, a[..., :1]])), ", 4) dtype uint8"),
    Case("image_1x1", npy(IMG, lambda a: a[:1, :1]), "image is 1x1 px, below data.min_side"),
    Case("image_10x2000", npy(IMG, lambda a: np.zeros((10, 2000, 3), np.uint8)),
         "image is 10x2000 px, below data.min_side = 16 px"),
    Case("image_elongated", npy(IMG, lambda a: np.zeros((20, 400, 3), np.uint8)),
         "an aspect ratio of 20.0 above data.max_aspect = 10"),
    Case("mask_3d", npy(SEG, lambda m: m[..., None]), "seg/train_3.npy: mask has shape"),
    Case("mask_float", npy(SEG, lambda m: m.astype(np.float64)), "dtype float64, expected"),
    Case("mask_overflow", npy(SEG, lambda m: np.full(m.shape, 300, np.int32)),
         "mask values span 300..300"),
    Case("mask_values_21_37", npy(SEG, mask_values), "mask holds values 21, 37 outside 0..20"),
    Case("mask_shape", npy(SEG, lambda m: m[:-1]), "differs from image train_3.npy shape"),
    # --- the csv: labels, ids, files it lists, its own bytes
    Case("labels_disagree_with_mask", csv(TRAIN_CSV, flip_label),
         "labels of Id 3 disagree with mask"),
    Case("label_2", label(2), "column 'cat' holds values '2' (not 0/1) for Ids 3"),
    Case("label_yes", label("yes"), "column 'cat' holds values 'yes' (not 0/1)"),
    Case("label_empty", label(""), "column 'cat' holds values '' (not 0/1)"),
    Case("duplicate_ids", csv(TRAIN_CSV, lambda f: pd.concat([f, f.iloc[[4]]])),
         "train_set.csv repeats Ids 4; keep one row per Id"),
    Case("csv_without_id", csv(TRAIN_CSV, lambda f: f.rename(columns={"Id": "image"})),
         "train_set.csv has no 'Id' column"),
    Case("csv_empty", write(TRAIN_CSV, b""), "train_set.csv: the file is empty (0 bytes)"),
    Case("csv_garbage", write(TRAIN_CSV, b"\x00\xff" * 300),
         "cannot read data/train/train_set.csv"),
    Case("split_empty", csv(TRAIN_CSV, lambda f: f.iloc[:0]), "train_set.csv lists no images"),
    Case("csv_row_without_image", remove(IMG), "image npy missing for Ids in"),
    Case("csv_row_without_mask", remove(SEG), "mask npy missing for Ids in"),
    Case("image_without_csv_row", write("data/train/img/train_99.npy", b""),
         "holds npy files without a row in"),
    Case("mask_without_csv_row", write("data/train/seg/train_99.npy", b""),
         "seg holds npy files without a row in"),
    Case("csv_missing", remove(TRAIN_CSV), "train_set.csv does not exist; set data.root",
         log=None),
    Case("root_missing", nothing, "data root data/nowhere does not exist", log=None,
         overlays=("bad_root",)),
    Case("class_names_differ", nothing, "position 1 is 'aeroplane' in the csv but 'bicycle'",
         overlays=("bad_class_names",)),
    # --- the test split and its hidden truth
    Case("test_image_zero_byte", write("data/test/img/test_1.npy", b""),
         "test_1.npy: the file is empty", split="test"),
    Case("test_image_dir_missing", remove("data/test/img"), "image directory data/test/img",
         split="test"),
    Case("test_truth_other_ids", csv("data/test_labels/test_set.csv", other_ids),
         "test_set.csv Ids differ from the split's csv", split="test"),
    # --- a VOC devkit: JPEG and PNG files
    Case("jpeg_garbage", write("data/VOC/JPEGImages/1.jpg", GARBAGE),
         "JPEGImages/1.jpg: not a complete image", template="voc"),
    Case("jpeg_truncated", truncate("data/VOC/JPEGImages/1.jpg"),
         "JPEGImages/1.jpg: not a complete image", template="voc"),
    Case("jpeg_missing", remove("data/VOC/JPEGImages/1.jpg"), "JPEG missing for Ids in",
         template="voc"),
    Case("png_zero_byte", write("data/VOC/SegmentationClass/0.png", b""),
         "SegmentationClass/0.png: the file is empty", template="voc"),
    Case("png_rgb", rgb_png, "0.png: PNG mode RGB, expected a palette", template="voc"),
    Case("png_values_beyond_classes", png_values, "0.png: mask holds values 21 outside 0..20",
         template="voc"),
    Case("voc_list_missing", remove("data/VOC/ImageSets/Segmentation/val.txt"),
         "val.txt does not exist; fix data.voc_lists", template="voc", split="test", log=None),
    # --- outputs of earlier rules: checkpoints, caches, OOF files, YAML
    *[Case(f"checkpoint_{name}", output(f"{CELL}/best.pt", damage), f"best.pt: {found}",
           template="trained", target="results/classification/test_probs.npz",
           log="results/logs/predict_classification.log")
      for name, damage, found in [
          ("zero_byte", b"", "the file is empty (0 bytes)"),
          ("truncated", cut, "not a complete torch checkpoint"),
          ("garbage", GARBAGE, "not a complete torch checkpoint"),
          ("pickled", pickled_checkpoint, "the torch checkpoint holds Python objects")]],
    Case("oof_zero_byte", output(f"{CELL}/oof.npz", b""), "oof.npz: the file is empty",
         template="trained", target="results/classification/thresholds.yaml",
         log="results/logs/thresholds_classification.log"),
    Case("cache_array_zero_byte", output("results/data/train/images.npy", b""),
         "results/data/train/images.npy: the file is empty", template="trained",
         target="results/classification/thresholds.yaml",
         log="results/logs/thresholds_classification.log"),
    Case("cache_index_garbage", output("results/data/test/index.csv", b"\x00\xff" * 300),
         "results/data/test/index.csv", template="trained",
         target="results/classification/test_probs.npz",
         log="results/logs/predict_classification.log"),
    Case("thresholds_zero_byte", output("results/segmentation/thresholds.yaml", b""),
         "thresholds.yaml: the file is empty", template="trained",
         target="results/segmentation/crf_search/shard0.csv",
         log="results/logs/crf_search/shard0.log"),
    Case("selection_garbage", output("results/classification/selected.yaml", b"task: [x"),
         "selected.yaml: not a complete YAML file", template="trained",
         target="results/classification/test_probs.npz", log=None),
    # --- the config: one line per problem, before any job starts
    *[Case(f"config_{name}", nothing, found, log=None, overlays=(overlay,))
      for name, overlay, found in [
          ("misspelled_key", "misspelled_key", "config data.image_sise: unknown key; valid:"),
          ("wrong_type", "bad_type", "config data.image_size: '64' is not an integer"),
          ("variant_param", "bad_variant_param",
           "variants.cnn.widthz: unknown parameter of model 'cnn' (did you mean 'widths'?)"),
          ("variant_type", "bad_variant_type", "config variants.cnn.epochs: 'ten' is not an "
                                               "integer"),
          ("variant_arch", "bad_variant_arch",
           "variants.unet.arch: unknown segmentation model 'unet3d'"),
          ("loss_param", "bad_loss_param",
           "loss_params.ce.betaa: unknown parameter of segmentation loss 'ce'")]],
]


# ----------------------------------------------------------------------------- templates


def palette_png(path: Path, mask: np.ndarray) -> None:
    im = Image.fromarray(mask.astype(np.uint8), mode="P")
    im.putpalette([v for c in range(256) for v in (c, (37 * c) % 256, (91 * c) % 256)])
    im.save(path)


def voc_devkit(kaggle: Path, root: Path) -> None:
    """The Kaggle-layout train split as a VOC devkit: train.txt ids 0-5, val.txt 6-9."""
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True)
    for i in range(10):
        Image.fromarray(np.load(kaggle / f"train/img/train_{i}.npy")).save(
            root / "JPEGImages" / f"{i}.jpg", quality=95)
        palette_png(root / "SegmentationClass" / f"{i}.png",
                    np.load(kaggle / f"train/seg/train_{i}.npy"))
    lists = root / "ImageSets/Segmentation"
    (lists / "train.txt").write_text("".join(f"{i}\n" for i in range(6)))
    (lists / "val.txt").write_text("".join(f"{i}\n" for i in range(6, 10)))


def build_templates(base: Path, names: set[str]) -> dict[str, Path]:
    templates = {}
    for name in ("kaggle", "voc"):
        (base / name).mkdir()
    kaggle = copy_workflow(base / "kaggle", "config", "bad_inputs")
    make_synthetic(kaggle / "data", n_train=10, n_test=4, seed=5, min_side=40, max_side=48)
    templates["kaggle"] = kaggle
    if "voc" in names:
        voc = copy_workflow(base / "voc", "config", "bad_inputs", "bad_inputs_voc")
        voc_devkit(kaggle / "data", voc / "data" / "VOC")
        templates["voc"] = voc
    if "trained" in names:
        trained = base / "trained"
        shutil.copytree(kaggle, trained)
        targets = ["results/classification/selected.yaml", "results/segmentation/thresholds.yaml",
                   INGEST.format("test")]
        [code] = run_snakemake_many([(trained, ["--cores", "2", *targets], base / "trained.out")])
        assert code == 0, (base / "trained.out").read_text()[-4000:]
        templates["trained"] = trained
    return templates


@pytest.fixture(scope="module")
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture(scope="module")
def templates(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              umask_022: None) -> dict[str, Path]:
    names = {"trained"} | {c.template for c in selected_cases(request)}
    return build_templates(tmp_path_factory.mktemp("templates"), names)


def selected_cases(request: pytest.FixtureRequest) -> list[Case]:
    """The cases of this module that the session runs (all, or those picked with -k)."""
    items = [i for i in request.session.items if i.module is request.module]
    return [i.callspec.params["case"] for i in items
            if hasattr(i, "callspec") and "case" in i.callspec.params]


# ----------------------------------------------------------------------------- running


@dataclass
class Outcome:
    returncode: int
    output: str  # what the terminal shows: stdout and stderr
    log: str | None  # the failing rule's log file
    raw_before: dict[str, str]
    raw_after: dict[str, str]
    results: bool  # whether results/ exists after the run


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def prepare(case: Case, template: Path, work: Path) -> dict[str, str]:
    """The case's workdir: a copy of its template with one thing broken; the raw data's
    digests."""
    shutil.copytree(template, work, symlinks=True)
    if case.overlays:
        merge_config(work, *case.overlays)
    case.edit(work)
    return digests(work / "data")


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, templates: dict[str, Path],
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    cases = selected_cases(request)
    base = tmp_path_factory.mktemp("cases")
    start = time.perf_counter()
    before = {c.id: prepare(c, templates[c.template], base / c.id) for c in cases}
    codes = run_snakemake_many([(base / c.id, ["--cores", "1", c.run_target()],
                                 base / f"{c.id}.out") for c in cases],
                               parallel=max(1, os.cpu_count() or 1))
    done = {}
    for case, code in zip(cases, codes, strict=True):
        work, log = base / case.id, case.log_path()
        done[case.id] = Outcome(
            code, (base / f"{case.id}.out").read_text(),
            (work / log).read_text() if log and (work / log).is_file() else None,
            before[case.id], digests(work / "data"), (work / "results").is_dir())
    print(f"{len(cases)} bad inputs through the workflow in {time.perf_counter() - start:.0f} s")
    return done


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_stops_with_one_line(case: Case, outcomes: dict[str, Outcome]) -> None:
    out = outcomes[case.id]
    assert out.returncode != 0, out.output[-3000:]
    # The line says what kind of problem it is and stands alone (a config check: one line per
    # problem, each its own).
    lines = [line for line in out.output.splitlines()
             if case.expect in line and ("DataError: " in line or "ConfigError: " in line)]
    assert lines, f"{case.expect!r} not in the terminal output:\n{out.output[-3000:]}"
    assert "Traceback" not in out.output
    if case.log_path() is None:  # stopped while Snakemake built its jobs: no job ran
        assert case.template == "trained" or not out.results
    else:
        assert out.log is not None, f"no rule log {case.log_path()}"
        assert [line for line in out.log.splitlines() if case.expect in line], out.log
        assert "Traceback" not in out.log
    assert out.raw_after == out.raw_before  # not one byte of raw data changed


def test_there_are_at_least_30_bad_inputs() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 30


# ----------------------------------------------------------------------------- good outputs


def test_outputs_are_readable_by_colleagues(templates: dict[str, Path]) -> None:
    """Under umask 022 every output is rw-r--r-- (rwxr-xr-x for folders), as new files are."""
    results = templates["trained"] / "results"
    files = [results / name for name in (
        "leaderboard.csv", "classification/selected.yaml", "segmentation/thresholds.yaml",
        "data/train/images.npy", "data/folds.csv", "classification/cnn/bce/fold0/best.pt",
        "classification/cnn/bce/fold0/oof.npz", "logs/ingest_train.log")]
    assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {
        f.name: "0o644" for f in files}
    assert oct(stat.S_IMODE((results / "classification/cnn/bce").stat().st_mode)) == "0o755"


def test_a_replaced_raw_npy_reruns_ingest(templates: dict[str, Path], tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(templates["trained"], work, symlinks=True)
    target = INGEST.format("train")

    def snakemake(*args: str) -> tuple[int, str]:
        [code] = run_snakemake_many([(work, [*args, target], tmp_path / "out.txt")])
        return code, (tmp_path / "out.txt").read_text()

    code, text = snakemake("-n")
    assert code == 0 and "Nothing to be done" in text
    path = work / IMG
    new = np.load(path)[::-1].copy()  # new pixels, same shape and file size
    np.save(path, new)
    code, text = snakemake("-n")
    assert code == 0 and "Params have changed since last execution" in text
    code, text = snakemake("--cores", "1")
    assert code == 0, text[-3000:]
    cache = load_cache(work / "results/data/train")
    assert np.array_equal(cache.original_image(cache.ids.index("3")), new)
