# vocflow: `make run` runs the whole study on the embedded dataset; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-cluster lint dag clean

install: $(STAMP)

# pip takes torch==2.14.1/torchvision==0.29.1 from this machine's local wheels (see README).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/snakemake --profile profiles/local

test: install
	$(BIN)/python -m pytest

# Only the SLURM tests (part of `make test`): install and start a local single-node cluster
# (Debian packages, root), run the grid through profiles/slurm, stop the daemons.
test-cluster: install
	$(BIN)/python -m pytest tests/test_cluster.py

# The checks the tests also run: ruff, snakefmt (the snakemake-workflows formatter) and
# Snakemake's own linter.
lint: install
	$(BIN)/ruff check src workflow tests bench
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

# dag.svg: the job DAG (one node per job; jobs already done are dashed); rulegraph.svg: one
# node per rule. Drawn by Graphviz dot (Debian package graphviz).
dag: install
	@command -v dot >/dev/null 2>&1 || { echo "make dag: Graphviz 'dot' is not installed: apt-get install graphviz" >&2; exit 1; }
	$(BIN)/snakemake --dag > dag.dot
	dot -Tsvg dag.dot -o dag.svg
	$(BIN)/snakemake --rulegraph > rulegraph.dot
	dot -Tsvg rulegraph.dot -o rulegraph.svg
	rm -f dag.dot rulegraph.dot

clean:
	rm -rf results .snakemake
