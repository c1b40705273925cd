"""The attack summary table and success-vs-ε plot (vocflow.attacks.run.summarize)."""

from vocflow.attacks.run import summarize
from vocflow.logs import setup_logging

setup_logging(snakemake.log[0])
summarize(csv_paths=list(snakemake.input), out_csv=snakemake.output.table,
          plot_png=snakemake.output.plot)
