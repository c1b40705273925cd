"""Select the best cell of one task (vocflow.leaderboard.write_selection)."""

from vocflow.leaderboard import write_selection
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
write_selection(leaderboard_csv=snakemake.input[0], task=snakemake.wildcards.task,
                cells=snakemake.params.cells, out=snakemake.output[0])
