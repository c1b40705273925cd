"""The ``vocflow`` command: helpers around the workflow (the workflow itself runs via snakemake).

    vocflow make-synthetic OUT [--n-train N --n-test N --seed S]
    vocflow score SUBMISSION --data ROOT [--format kaggle|synthetic|voc] [--split train|test]
                  [--labels DIR]
    vocflow sample-variants [--config FILE --out FILE --n N --seed S --space NAME]
    vocflow fetch-weights [KEY ...] [--config FILE]
    vocflow predict IMAGE [IMAGE ...] --out DIR [--results results]
    vocflow submit [--profile DIR --workdir DIR --time MIN --mem-mb MB ...] [-- SNAKEMAKE ARGS]
    vocflow status [--config FILE ...] [--results DIR] [--watch N]
    vocflow plan [--workdir DIR --benchmarks DIR] [-- SNAKEMAKE ARGS]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from vocflow.errors import VocflowError

# Each command imports the modules it runs when it runs: most pull in torch (~1.5 s), which a
# command like `vocflow submit` must not pay for.
log = logging.getLogger(__name__)


def cmd_make_synthetic(args: argparse.Namespace) -> None:
    from vocflow.data.synthetic import make_synthetic

    make_synthetic(args.out, n_train=args.n_train, n_test=args.n_test, seed=args.seed,
                   min_side=args.min_side, max_side=args.max_side)


def cmd_score(args: argparse.Namespace) -> None:
    """Score a submission against a labelled split read straight from its raw layout."""
    from vocflow.data.formats import read_split
    from vocflow.data.synthetic import VOC_CLASSES
    from vocflow.rle import score_submission

    names = VOC_CLASSES if args.format == "voc" else None  # Kaggle: from the csv header
    source = read_split(args.format, args.data, args.split, class_names=names,
                        labels_root=args.labels)
    if not source.labelled:
        raise VocflowError(f"split '{args.split}' of {args.data} has no labels; pass --labels "
                           "DIR (the hidden truth in the train layout) or --split train")
    masks = [source.read_mask(i) for i in range(len(source.ids))]
    scores = score_submission(args.submission, source.ids, source.labels, masks,
                              len(source.class_names))
    sys.stdout.write(json.dumps(scores, indent=2) + "\n")


def cmd_sample_variants(args: argparse.Namespace) -> None:
    """Random search: sample variants from the config's search_space into a config fragment."""
    from vocflow.random_search import write_search

    fragment = write_search(args.config, args.out, seed=args.seed, n=args.n,
                            spaces=args.space or None)
    log.info("wrote %d variants to %s", len(fragment["variants"]), args.out)


def cmd_fetch_weights(args: argparse.Namespace) -> None:
    """Download the pretrained weights of the config's grid (or KEYs) into the torch hub cache."""
    from vocflow.grid import grid_weights
    from vocflow.models.weights import fetch

    if not args.keys:
        with open(args.config) as fh:
            args.keys = grid_weights(yaml.safe_load(fh))
    for key in args.keys:
        log.info("%s: %s", key, fetch(key))


def cmd_predict(args: argparse.Namespace) -> None:
    """The selected pipeline on new images: masks, overlays and labels.csv in --out."""
    from vocflow.apply import predict_images

    predict_images(args.images, args.out, results=args.results)


def cmd_submit(args: argparse.Namespace) -> None:
    """Submit the Snakemake driver as a SLURM job; print its job id and log path."""
    from vocflow.cluster import profile_settings, submit_driver

    profile = Path(args.workdir) / args.profile
    settings = profile_settings(profile, partition=args.partition, account=args.account,
                                qos=args.qos, time_min=args.time, mem_mb=args.mem_mb)
    extra = args.snakemake_args[1:] if args.snakemake_args[:1] == ["--"] else args.snakemake_args
    job = submit_driver(args.workdir, args.profile, extra, args.log_dir, settings)
    sys.stdout.write(f"submitted the Snakemake driver as SLURM job {job.job_id}\n"
                     f"driver log: {job.log}\n")


def cmd_status(args: argparse.Namespace) -> None:
    """The grid's cells: state, epoch, best score, time, SLURM job; --watch N refreshes."""
    from vocflow.status import report

    configs = args.config or ["config/config.yaml"]
    if not args.watch:
        sys.stdout.write(report(configs, args.results))
        return
    try:
        while True:
            text = report(configs, args.results)
            # ANSI: cursor home, clear screen; then the table in place of the last one.
            sys.stdout.write(f"\x1b[H\x1b[2J{time.strftime('%H:%M:%S')}  every "
                             f"{args.watch:g} s, Ctrl-C stops\n\n{text}")
            sys.stdout.flush()
            time.sleep(args.watch)
    except KeyboardInterrupt:
        sys.stdout.write("\n")


def cmd_plan(args: argparse.Namespace) -> None:
    """What `snakemake ARGS` would run: training cells done and to run, GPU jobs, GPU-hours."""
    from vocflow.plan import format_plan, plan_run

    extra = args.snakemake_args[1:] if args.snakemake_args[:1] == ["--"] else args.snakemake_args
    sys.stdout.write(format_plan(plan_run(args.workdir, extra, args.benchmarks)))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vocflow", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    syn = sub.add_parser("make-synthetic", help="write the embedded synthetic dataset")
    syn.add_argument("out")
    syn.add_argument("--n-train", type=int, default=360)
    syn.add_argument("--n-test", type=int, default=80)
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--min-side", type=int, default=96)
    syn.add_argument("--max-side", type=int, default=160)
    syn.set_defaults(func=cmd_make_synthetic)
    score = sub.add_parser("score", help="Kaggle score of a submission on a labelled split")
    score.add_argument("submission")
    score.add_argument("--data", required=True, help="dataset root")
    score.add_argument("--format", default="kaggle", choices=["kaggle", "synthetic", "voc"])
    score.add_argument("--split", default="test", choices=["train", "test"])
    score.add_argument("--labels", default=None, help="hidden truth of the test split")
    score.set_defaults(func=cmd_score)
    search = sub.add_parser("sample-variants", help="sample N variants from search_space")
    search.add_argument("--config", default="config/config.yaml")
    search.add_argument("--out", default="config/search.yaml", help="config fragment to write")
    search.add_argument("--n", type=int, default=None, help="per space (default: its 'n')")
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--space", action="append", help="search_space entry (default: all)")
    search.set_defaults(func=cmd_sample_variants)
    fetch = sub.add_parser("fetch-weights", help="download pretrained weights (needs internet)")
    fetch.add_argument("keys", nargs="*", help="weights keys (default: the config's grid)")
    fetch.add_argument("--config", default="config/config.yaml")
    fetch.set_defaults(func=cmd_fetch_weights)
    pred = sub.add_parser("predict", help="apply the selected pipeline to new images")
    pred.add_argument("images", nargs="+", help="JPEG, PNG or .npy (H, W, 3) uint8 images")
    pred.add_argument("--out", required=True, help="folder for masks/, overlays/, labels.csv")
    pred.add_argument("--results", default="results", help="the finished study's results/")
    pred.set_defaults(func=cmd_predict)
    drive = sub.add_parser("submit", help="run the Snakemake driver itself as a SLURM job")
    drive.add_argument("--profile", default="profiles/slurm", help="relative to --workdir")
    drive.add_argument("--workdir", default=".", help="the workflow's directory")
    drive.add_argument("--log-dir", default="results/logs/driver", help="relative to --workdir")
    drive.add_argument("--time", type=int, default=None, help="minutes (default: 3 days)")
    drive.add_argument("--mem-mb", type=int, default=None, help="default: 4000")
    for name in ("partition", "account", "qos"):
        drive.add_argument(f"--{name}", default=None, help="default: from the profile")
    drive.add_argument("snakemake_args", nargs=argparse.REMAINDER,
                       help="after --: targets and options for snakemake")
    drive.set_defaults(func=cmd_submit)
    stat = sub.add_parser("status", help="state of every grid cell (read only)")
    stat.add_argument("--config", action="append", help="config file; repeat to merge "
                      "--configfile overlays in order (default: config/config.yaml)")
    stat.add_argument("--results", default="results", help="the study's results/")
    stat.add_argument("--watch", type=float, default=0, metavar="N",
                      help="refresh every N seconds until Ctrl-C")
    stat.set_defaults(func=cmd_status)
    plan = sub.add_parser("plan", help="dry run: cells to train, GPU jobs and GPU-hours")
    plan.add_argument("--workdir", default=".", help="the workflow's directory")
    plan.add_argument("--benchmarks", default="results/benchmarks/train",
                      help="training benchmarks, {task}/{model}/{loss}/fold{k}.tsv (relative "
                      "to --workdir)")
    plan.add_argument("snakemake_args", nargs=argparse.REMAINDER,
                      help="after --: targets and options for snakemake (--profile ...)")
    plan.set_defaults(func=cmd_plan)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except VocflowError as err:
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
