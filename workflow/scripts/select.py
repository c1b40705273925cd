"""Pick the best cell of one task (vocflow.select.write_selection)."""

from vocflow.logs import setup_logging
from vocflow.select import write_selection

setup_logging(snakemake.log[0])
write_selection(snakemake.input[0], snakemake.wildcards.task, snakemake.params.cells,
                snakemake.output[0])
