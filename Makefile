# make test: set everything up and pass the tests.  make demo: run the main job on embedded defaults.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck pytest bench demo clean proto evaluate test-ble-stack fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# setup.py builds the optional C matching extension in place (-e): rebuild when it or its source changes.
$(STAMP): pyproject.toml setup.py src/proximity/matching/_native.c | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,sim]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check src tests examples benchmarks scripts
	$(BIN)/ruff format --check src tests examples benchmarks scripts

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

# Every input path's fuzz harness (tests/fuzz/), long: 100,000 examples each (FUZZ_EXAMPLES=N to
# change), then the SIGKILL-during-ingest tests with 100 kills each (FUZZ_KILLS=K). `make test` runs the
# same harnesses with a few hundred examples and a few kills. Table at the end; build/fuzz/report.jsonl.
fuzz: install
	$(BIN)/python scripts/fuzz.py

bench: install
	mkdir -p .benchmarks
	$(BIN)/pytest benchmarks --benchmark-only --benchmark-json=.benchmarks/report.json
	@echo "benchmark report: .benchmarks/report.json"

# Regenerate the GAEN export-format module and its typed stubs from the committed .proto.
proto: install
	cd src/proximity/keyfiles && ../../../$(BIN)/python -m grpc_tools.protoc -I. --python_out=. \
		--plugin=protoc-gen-mypy=../../../$(BIN)/protoc-gen-mypy --mypy_out=. export.proto

# Reproduce the README's estimator tables: fit on half the carriage configurations, score on the other
# (both ways); built-in defaults; leave one configuration out at a time (pooled); and the check that the
# presets are not handicapped by the recordings' attenuation scale.
evaluate: install
	mkdir -p build
	$(BIN)/python scripts/split_by_config.py data/mit-matrix-rssi.csv.gz build/mit-fit-a.csv.gz build/mit-fit-b.csv.gz
	$(BIN)/proximity evaluate build/mit-fit-b.csv.gz --fit build/mit-fit-a.csv.gz --estimator all
	$(BIN)/proximity evaluate build/mit-fit-a.csv.gz --fit build/mit-fit-b.csv.gz --estimator all
	$(BIN)/proximity evaluate data/mit-matrix-rssi.csv.gz --estimator all
	$(BIN)/proximity evaluate data/mit-matrix-rssi.csv.gz --cross-validate --estimator all
	$(BIN)/python scripts/preset_scale_check.py data/mit-matrix-rssi.csv.gz

# Tier 3 BLE: two nodes on the real Linux Bluetooth stack (kernel + bluetoothd + btvirt) in a QEMU guest,
# ~90 s; skips, saying why, without qemu/kernel/BlueZ tools (PROXIMITY_STACK_INSTALL=1 apt-installs them).
test-ble-stack: install
	PYTHON=$(CURDIR)/$(BIN)/python tests/stack/run-stack.sh

demo: install
	$(BIN)/python examples/demo.py

clean:
	rm -rf $(VENV) .benchmarks .mypy_cache .pytest_cache .ruff_cache
