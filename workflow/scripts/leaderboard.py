"""Gather every cell's metrics into the leaderboard (vocflow.select.write_leaderboard)."""

from vocflow.logs import setup_logging
from vocflow.select import write_leaderboard

setup_logging(snakemake.log[0])
write_leaderboard(snakemake.input, snakemake.params.monitors, snakemake.output[0])
