# make docs: the documentation (Sphinx, with the gallery run and the performance tables
# generated from docs/bench/*.json); any warning fails the build.
# Needs fastact importable (pip install -e ".[docs]", or built in place) and Python >= 3.11.
PYTHON ?= python

.PHONY: docs docs-clean perf-tables

docs:
	$(PYTHON) -m sphinx -W --keep-going -b html docs docs/_build/html

# the README's headline table and the performance page's tables from docs/bench/*.json
perf-tables:
	$(PYTHON) docs/gen_performance.py --readme

docs-clean:
	rm -rf docs/_build docs/_generated docs/api/generated docs/auto_examples docs/sg_execution_times.rst
