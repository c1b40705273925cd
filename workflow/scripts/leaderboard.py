"""Aggregate every cell's metrics into the leaderboard (vocflow.leaderboard); in a partial grid
the cell folds without results (params.missing) become failed rows."""

from vocflow.leaderboard import write_leaderboard
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
write_leaderboard(paths=list(snakemake.input), monitors=snakemake.params.monitors,
                  out=snakemake.output[0], missing=snakemake.params.get("missing", []))
