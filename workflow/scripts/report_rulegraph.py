"""The workflow's rule graph and job DAG as DOT text (vocflow.report.rulegraph.write_graphs)."""

from vocflow.logs import setup_logging
from vocflow.report.rulegraph import write_graphs

setup_logging(snakemake.log[0])
write_graphs(snakefile=snakemake.params.snakefile, workdir=snakemake.params.workdir,
             config=snakemake.config, rulegraph=snakemake.output.rulegraph,
             dag=snakemake.output.dag, enabled=snakemake.params.enabled)
