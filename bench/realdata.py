"""Real photos: the workflow's selected cell against one hand-written model, same CPU seconds.

Ours: the whole workflow on a copy of itself with its own real-photo config (default
config/camvid.yaml on ../shared/data/camvid_dev), up to the scored test prediction
(results/test_ensemble.yaml: the selected cell's fold models and refits, flip TTA, thresholds,
CRF if kept, at each val frame's original size). Its training budget is the CPU time
(user + system, from Snakemake's benchmark files) of ALL its training jobs: every grid cell of
both tasks, every fold, every refit — job start-up and imports included.

Baseline: one model written here in ~40 lines, given exactly that many CPU seconds of
training: EfficientNet-Lite0 encoder (its ImageNet weights) + the small FPN decoder, inverse
pixel-frequency weighted cross-entropy, AdamW 1e-3 with a cosine schedule over the CPU
budget, the same `light` augmentation, on every training image of the same cache (the
workflow's data.image_size), one thread; scored with flip TTA the same way (probabilities
upsampled to the original size, one confusion matrix over all val pixels, mIoU over
background + the classes, void ignored).

    .venv/bin/python bench/realdata.py [--seed 0] [--config config/camvid.yaml]
                                       [--data ../shared/data/camvid_dev] [--keep DIR]

Last line: ``realdata: ours X mIoU, baseline Y mIoU, ratio R``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import yaml

from vocflow import metrics
from vocflow.data.cache import load_cache
from vocflow.data.transforms import build_transform, normalize_batch
from vocflow.models import build_model

REPO = Path(__file__).resolve().parents[1]


def run_workflow(work: Path, config: Path, data: Path, seed: int) -> float:
    """Copy the workflow to ``work`` and run it up to the scored test prediction; wall s."""
    for name in ("Snakefile", "workflow", "config", "profiles"):
        src = REPO / name
        if not (work / name).exists():  # a kept folder (--keep) finishes its own run
            (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    overlay = work / "bench.yaml"
    overlay.write_text(yaml.safe_dump({"seed": seed, "data": {"root": str(data)}}))
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores", "2",
           "--configfile", str(config), str(overlay), "--", "results/test_ensemble.yaml",
           "results/ablation.csv"]
    result = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"workflow failed:\n{result.stderr[-4000:]}")
    return time.perf_counter() - start


def training_cpu_seconds(results: Path) -> tuple[float, pd.DataFrame]:
    """CPU s of every training job (grid cells and refits) from Snakemake's benchmark files."""
    rows = []
    for stage in ("train", "refit"):
        for tsv in sorted((results / "benchmarks" / stage).rglob("*.tsv")):
            frame = pd.read_csv(tsv, sep="\t")
            rows.append({"job": str(tsv.relative_to(results / "benchmarks")),
                         "cpu_s": float(frame["cpu_time"].iloc[0]),
                         "wall_s": float(frame["s"].iloc[0])})
    jobs = pd.DataFrame(rows)
    return float(jobs["cpu_s"].sum()), jobs


def probs_at_original(model: torch.nn.Module, cache, i: int) -> torch.Tensor:
    """(K, H, W) flip-TTA probabilities of test image ``i`` at its original size."""
    x = normalize_batch(torch.from_numpy(np.asarray(cache.images[i:i + 1])), None, True)
    with torch.no_grad():
        p = model(x).softmax(1) + model(x.flip(-1)).softmax(1).flip(-1)
    h, w = int(cache.heights[i]), int(cache.widths[i])
    return F.interpolate(p / 2, size=(h, w), mode="bilinear", align_corners=False)[0]


def baseline(train_dir: Path, test_dir: Path, budget: float, seed: int,
             arch: str = "lite0_seg", pretrained: bool = True,
             weighting: str = "inverse") -> tuple[float, dict]:
    """The hand-written model: train for ``budget`` CPU s, score mIoU on the test split.

    ``arch``/``pretrained``/``weighting`` (inverse: 1 / f; enet: 1 / ln(1.02 + f)) let
    bench/seg_archs.py train every registry segmenter the same way."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train, test = load_cache(train_dir), load_cache(test_dir)
    k = len(train.class_names) + 1
    model = build_model("segmentation", arch, k, pretrained=pretrained)
    model = model.to(memory_format=torch.channels_last)
    counts = np.bincount(np.asarray(train.masks).ravel(), minlength=256)[:k].astype(float)
    freq = counts / counts.sum()
    present = freq > 0
    raw = 1 / np.log(1.02 + freq) if weighting == "enet" else 1 / np.maximum(freq, 1e-12)
    raw = np.where(present, raw, 0.0)
    weight = torch.tensor(raw / (freq * raw).sum(), dtype=torch.float32)  # mean pixel weight 1
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    augment = build_transform("light", train.image_size)
    start, steps, epochs, done = time.process_time(), 0, 0, False
    while not done:
        model.train()
        order = rng.permutation(len(train))
        for lo in range(0, len(order) - 1, 8):
            used = (time.process_time() - start) / budget
            if used >= 1:
                done = True
                break
            for group in optimizer.param_groups:
                group["lr"] = 1e-3 * 0.5 * (1 + math.cos(math.pi * used))
            batch = [augment(image=train.images[i], mask=train.masks[i]) for i in order[lo:lo + 8]]
            x = normalize_batch(torch.from_numpy(np.stack([b["image"] for b in batch])), None,
                                True)
            y = torch.from_numpy(np.stack([b["mask"] for b in batch])).long()
            out = model(x)
            out = out["out"] if isinstance(out, dict) else out  # torchvision's aux head unused
            loss = F.cross_entropy(out, y, weight=weight, ignore_index=255)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
        else:
            epochs += 1
    cpu = time.process_time() - start
    model.eval()
    cm = np.zeros((k, k), np.int64)
    for i in range(len(test)):
        pred = probs_at_original(model, test, i).argmax(0).numpy()
        cm += metrics.confusion_matrix(pred, test.original_mask(i), k)
    return metrics.mean_iou(cm), {"cpu_s": cpu, "steps": steps, "epochs": epochs,
                                  "iou": metrics.iou_from_confusion(cm)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="config/camvid.yaml", help="relative to the repo")
    ap.add_argument("--data", default="../shared/data/camvid_dev", help="relative to the repo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", default=None, help="run the workflow in this folder, keep it")
    args = ap.parse_args()
    torch.set_num_threads(1)  # as the workflow's training jobs (resources.train_threads)
    work = Path(args.keep or tempfile.mkdtemp(prefix="realdata_"))
    work.mkdir(parents=True, exist_ok=True)
    wall = run_workflow(work, REPO / args.config, (REPO / args.data).resolve(), args.seed)
    results = work / "results"
    budget, jobs = training_cpu_seconds(results)
    test = yaml.safe_load((results / "test_ensemble.yaml").read_text())
    ours = float(test["ensemble"]["segmentation"]["miou"])
    print(jobs.to_string(index=False))
    selected = yaml.safe_load((results / "segmentation/selected.yaml").read_text())["model"]
    folds = test.get("fold_ensemble", test["ensemble"])["segmentation"]["miou"]
    refits = test.get("refit", {}).get("segmentation", {}).get("miou", float("nan"))
    print(f"ours: workflow wall {wall:.0f} s, training CPU {budget:.0f} s in {len(jobs)} jobs; "
          f"selected {selected}; fold ensemble miou {folds:.4f}, refits alone {refits:.4f}")
    print((results / "ablation.csv").read_text() if (results / "ablation.csv").is_file()
          else "")
    start = time.perf_counter()
    score, info = baseline(results / "data/train", results / "data/test", budget, args.seed)
    print(f"baseline: {info['epochs']} epochs, {info['steps']} steps, {info['cpu_s']:.0f} CPU s, "
          f"wall {time.perf_counter() - start:.0f} s; per-class IoU "
          + " ".join(f"{v:.2f}" for v in info["iou"]))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    print(f"realdata: ours {ours:.4f} mIoU, baseline {score:.4f} mIoU, ratio {ours / score:.3f}")


if __name__ == "__main__":
    main()
