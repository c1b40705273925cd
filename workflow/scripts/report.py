"""Build results/report/index.html (vocflow.report.build.build_report)."""

from pathlib import Path

from vocflow.logs import setup_logging
from vocflow.report.build import build_report

setup_logging(snakemake.log[0])
selections = {Path(p).parent.name: p for p in snakemake.input.selections}
build_report(snakemake.input.leaderboard, snakemake.input.metrics, selections,
             snakemake.output[0], score_yaml=snakemake.input.score[0] if snakemake.input.score
             else None)
