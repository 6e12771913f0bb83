# make test: set everything up and pass the tests.  make demo: run the main job on embedded defaults.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck pytest bench demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

bench: install
	mkdir -p .benchmarks
	$(BIN)/pytest benchmarks --benchmark-only --benchmark-json=.benchmarks/report.json
	@echo "benchmark report: .benchmarks/report.json"

demo: install
	$(BIN)/python examples/demo.py

clean:
	rm -rf $(VENV) .benchmarks .mypy_cache .pytest_cache .ruff_cache
