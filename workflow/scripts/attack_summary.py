"""Gather every attack job's table and plot success vs ε (vocflow.attacks.run.summarize)."""

from vocflow.attacks.run import summarize
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
summarize(snakemake.input, snakemake.output.table, snakemake.output.plot)
