"""The ``vocflow`` command: helpers around the workflow (the workflow itself runs via snakemake).

    vocflow make-synthetic OUT [--n-train N --n-test N --seed S]
    vocflow score SUBMISSION --data ROOT [--format kaggle|synthetic|voc] [--split train|test]
                  [--labels DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from vocflow.errors import VocflowError

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
