"""What tracking the raw data costs on every `snakemake` start: our fingerprint of the files
ingest reads (path, size, mtime: one stat per file, vocflow.data.sources.split_sources) vs
hashing their content (sha256 of every byte), on the embedded dataset (the default config's
360 + 80 images, in the Kaggle layout) and on 10,000 listed files (5,000 training images and
their masks, --side px square).

Both sides are timed warm (the files in the page cache, as on a second start), best of 3; on a
cluster file system a cold content hash reads the whole dataset over the network, a stat does
not. Also checks that both notice a replaced image of the same size.
Run: .venv/bin/python bench/ingest_sources.py [--side 160] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from vocflow.data.sources import split_sources
from vocflow.data.synthetic import make_synthetic


def content_hash(root: Path, split: str, labels_root: Path | None) -> str:
    """The baseline: sha256 over every file ingest reads for ``split``, content included."""
    folders = [root / split, *([labels_root] if split == "test" and labels_root else [])]
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(str(path).encode())
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
    return digest.hexdigest()


def best_of(repeats: int, fn: Callable[[], str]) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def listed_files(root: Path, n: int, side: int) -> None:
    """A Kaggle-layout train split of ``n`` ids: 2n files (image + mask) listed in its csv."""
    rng = np.random.default_rng(0)
    for sub in ("img", "seg"):
        (root / "train" / sub).mkdir(parents=True, exist_ok=True)
    image = rng.integers(0, 256, (side, side, 3), np.uint8)
    mask = rng.integers(0, 21, (side, side), np.uint8)
    for i in range(n):
        np.save(root / "train" / "img" / f"train_{i}.npy", np.roll(image, i))
        np.save(root / "train" / "seg" / f"train_{i}.npy", mask)
    pd.DataFrame({"Id": range(n), "a": 0}).to_csv(root / "train" / "train_set.csv", index=False)


def compare(name: str, root: Path, split: str, labels_root: Path | None) -> tuple[float, float]:
    files = sum(1 for p in (root / split).rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in (root / split).rglob("*") if p.is_file())
    ours_s, ours = best_of(3, lambda: split_sources("kaggle", root, split, labels_root))
    base_s, base = best_of(3, lambda: content_hash(root, split, labels_root))
    # Both must see a replaced image of the same size (new pixels, a new mtime).
    path = root / split / "img" / f"{split}_3.npy"
    np.save(path, np.load(path)[::-1].copy())
    changed = (split_sources("kaggle", root, split, labels_root) != ours,
               content_hash(root, split, labels_root) != base)
    print(f"{name}: {files} files, {size / 2**20:.0f} MiB: fingerprint {ours_s * 1e3:.1f} ms, "
          f"content hash {base_s * 1e3:.0f} ms; both notice a replaced image: {changed}")
    if not all(changed):
        raise SystemExit("a replaced image went unnoticed")
    return ours_s, base_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=160, help="side (px) of the listed images")
    parser.add_argument("--n", type=int, default=5000, help="listed ids (2 files each)")
    parser.add_argument("--keep", type=Path, help="build the datasets here and keep them")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="vocflow-bench-"))
    try:
        embedded = base / "embedded"
        if not (embedded / "train").is_dir():
            make_synthetic(embedded, n_train=360, n_test=80, seed=0, min_side=96, max_side=160)
        for split in ("train", "test"):
            compare(f"embedded {split}", embedded, split, embedded / "test_labels")
        listed = base / "listed"
        if not (listed / "train").is_dir():
            listed_files(listed, args.n, args.side)
        ours_s, base_s = compare(f"{2 * args.n} listed files", listed, "train", None)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    print(f"ingest_sources: ours {ours_s * 1e3:.1f} ms, baseline {base_s * 1e3:.0f} ms, "
          f"ratio {base_s / ours_s:.0f}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
