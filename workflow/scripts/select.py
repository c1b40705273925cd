"""Select the best cell of one task and link its fold files under results/{task}/selected/
(vocflow.leaderboard.write_selection); params.partial lets it select from a grid with failed
cells."""

from vocflow.leaderboard import write_selection
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
write_selection(leaderboard_csv=snakemake.input.leaderboard, task=snakemake.wildcards.task,
                cells=snakemake.params.cells, out=snakemake.output.selection,
                partial=snakemake.params.partial,
                links={kind: list(snakemake.output[kind])
                       for kind in ("checkpoints", "oof", "metrics")})
