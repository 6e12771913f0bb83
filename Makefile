# make test: set everything up and pass the tests.  make demo: run the main job on embedded defaults.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck pytest bench bench-scale demo clean proto evaluate fit fit-channel calibration test-ble-stack test-postgres fuzz \
	coupling epidemic

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# setup.py builds the optional C matching extension in place (-e): rebuild when it or its source changes.
$(STAMP): pyproject.toml setup.py src/proximity/crypto/_native.c src/proximity/sim/_kernel.c src/proximity/sim/_pairs.c src/proximity/sim/_walk.c | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,sim,epi]'
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
	PROXIMITY_POSTGRES_OPTIONAL=1 scripts/with-postgres.sh \
		$(BIN)/pytest benchmarks --ignore=benchmarks/scale --benchmark-only --benchmark-json=.benchmarks/report.json
	@echo "benchmark report: .benchmarks/report.json"

# The simulator's long runs, single rounds (hours on a shared 2-core machine): quang-ninh against a
# baseline checkout (PROXIMITY_BASELINE=DIR, e.g. a worktree of 99c02a7) in the same run, the 100,000-agent
# city for PROXIMITY_CITY_MINUTES (default 60, extrapolated to the day), the 1,000,000-agent city for
# PROXIMITY_1M_MINUTES (default 60) on a LocalCluster of 1 and 2 workers (PROXIMITY_SCHEDULER=ADDR: a cluster).
bench-scale: install
	mkdir -p .benchmarks
	$(BIN)/pytest benchmarks/scale --benchmark-only --benchmark-json=.benchmarks/scale.json -v
	@echo "benchmark report: .benchmarks/scale.json"

# The key-server storage and server tests against a throwaway PostgreSQL cluster (as root; see the script).
# PROXIMITY_POSTGRES_INSTALL=1 apt-installs postgresql when missing; once a cluster runs, a skip fails.
test-postgres: install
	PROXIMITY_REQUIRE_POSTGRES=1 scripts/with-postgres.sh $(BIN)/pytest -q tests/test_server_http.py \
		tests/test_server_storage.py tests/test_server_crash.py

# Regenerate the GAEN export-format module and its typed stubs from the committed .proto.
proto: install
	cd src/proximity/keyfiles && ../../../$(BIN)/python -m grpc_tools.protoc -I. --python_out=. \
		--plugin=protoc-gen-mypy=../../../$(BIN)/protoc-gen-mypy --mypy_out=. export.proto

# The shared recordings (data/README.md). SCORED have sessions on both sides of 1.8 m; mit_static (1.83 m
# only) is fitted on, never scored.
SCORED := data/mit-matrix-rssi.csv.gz data/range_angle.csv.gz data/kri_anechoic.csv.gz data/herald_edison.csv.gz
FIT_ONLY := data/mit_static.csv.gz

# Reproduce the README's estimator tables: every scored file held out in turn (models and thresholds fitted
# on all the other files), the equal-weight pooled table, and the nested choice of the default (~2 min);
# then leave one configuration of MIT Matrix out at a time, and the shipped defaults on all of it.
evaluate: install
	mkdir -p build
	$(BIN)/proximity evaluate $(SCORED) --fit $(FIT_ONLY) --leave-one-dataset-out --json > build/lodo.json
	$(BIN)/python scripts/readme_tables.py build/lodo.json README.md
	$(BIN)/proximity evaluate $(SCORED) --fit $(FIT_ONLY) --leave-one-dataset-out --estimator mean-attenuation
	$(BIN)/proximity evaluate data/mit-matrix-rssi.csv.gz --cross-validate --estimator all
	$(BIN)/proximity evaluate $(SCORED) --estimator all

# Fit the shipped defaults on all the shared recordings (nested leave-one-dataset-out chooses the default
# estimator) into the package; a test checks the committed file is what this writes (~2 min).
fit: install
	$(BIN)/python scripts/fit_defaults.py $(SCORED) $(FIT_ONLY)

# Fit the simulator's channel on all the shared recordings into the package (sim/data/channel.json); it reads
# nothing of the estimators' fit above, and a test checks the committed file is what this writes (~1 min).
fit-channel: install
	$(BIN)/python scripts/fit_channel.py $(SCORED) $(FIT_ONLY)

# Rebuild the package's calibration table from the published lists in data/calibration/.
calibration: install
	$(BIN)/python scripts/build_calibration.py

# Tier 3 BLE: two nodes on the real Linux Bluetooth stack (kernel + bluetoothd + btvirt) in a QEMU guest,
# ~90 s; skips, saying why, without qemu/kernel/BlueZ tools (PROXIMITY_STACK_INSTALL=1 apt-installs them).
test-ble-stack: install
	PYTHON=$(CURDIR)/$(BIN)/python tests/stack/run-stack.sh

# The app's per-layer coupling for the epidemic model (docs/epidemic.md): the BLE simulator in each venue
# a Covasim layer maps to, written with its provenance to simulations/coupling/quang-ninh.json (~5 min).
coupling: install
	$(BIN)/python scripts/measure_coupling.py simulations/quang-ninh-province.toml

# The README's Quang Ninh table and sweep: 5 paired seeds x the letter's adoptions and the 0-100 % sweep
# on a scaled province (EPI_AGENTS agents standing for 1.32 M people; ~50 min on 2 busy cores; see
# docs/epidemic.md, "Cost"). EPI_AGENTS=1320000 is full size (about 25x the time).
EPI_AGENTS ?= 44000
EPI_ADOPTIONS ?= 0,0.01,0.1,0.2,0.272,0.3,0.4,0.5,0.58,0.6,0.7,0.8,0.9,1.0
epidemic: install
	$(BIN)/proximity epidemic simulations/quang-ninh-province.toml --agents $(EPI_AGENTS) --workers 2 \
		--adoption $(EPI_ADOPTIONS) --out build/epidemic

demo: install
	$(BIN)/python examples/demo.py

clean:
	rm -rf $(VENV) .benchmarks .mypy_cache .pytest_cache .ruff_cache
