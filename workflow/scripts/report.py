"""Build the study report (vocflow.report.build.build_report)."""

from vocflow.logs import setup_logging
from vocflow.report.build import build_report

setup_logging(snakemake.log[0])
build_report(paths=snakemake.params.paths, out_html=snakemake.output.html,
             figures_dir=snakemake.output.figures, discussion_md=snakemake.output.discussion,
             options=snakemake.params.options, config=snakemake.params.config)
