"""The workflow's rule graph as DOT text (vocflow.report.rulegraph.write_rule_graph)."""

from vocflow.logs import setup_logging
from vocflow.report.rulegraph import write_rule_graph

setup_logging(snakemake.log[0])
write_rule_graph(
    snakemake.params.snakefile,
    snakemake.params.workdir,
    snakemake.config,
    snakemake.output[0],
    enabled=snakemake.params.enabled,
)
