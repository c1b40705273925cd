"""The workflow's rule graph as DOT text (vocflow.report.rulegraph.write_rule_graph)."""

from vocflow.logs import setup_logging
from vocflow.report.rulegraph import write_rule_graph

setup_logging(snakemake.log[0])
write_rule_graph(snakefile=snakemake.params.snakefile, workdir=snakemake.params.workdir,
                 config=snakemake.config, out=snakemake.output[0], enabled=snakemake.params.enabled)
