# Every target creates the environment first: a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/unitcost demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	cd bench && ../$(BIN)/python bench_report.py
	cd bench && ../$(BIN)/python bench_stack.py
	cd bench && ../$(BIN)/python bench_ingest.py
	cd bench && ../$(BIN)/python bench_capacity.py
	cd bench && ../$(BIN)/python bench_simulator.py

clean:
	rm -rf $(VENV) unitcost.duckdb unitcost-report.html .pytest_cache .mypy_cache .ruff_cache
