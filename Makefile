# The project's entry points. Each target creates or refreshes its virtual
# environment first, so `make serve` and `make test` work on a fresh machine
# that has only Python 3.11 and the package registries.
PYTHON ?= python3
VENV   ?= .venv
HOST   ?= 127.0.0.1
PORT   ?= 8000
MODEL  ?= cdr
BIN    := $(VENV)/bin

.PHONY: serve test lint train artifact evaluate sweep benchmark lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# One stamp per extra set: re-installs when pyproject.toml changes.
$(VENV)/.stamp-serve: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[serve]"
	touch $@

$(VENV)/.stamp-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@ $(VENV)/.stamp-serve

# The service with its server configuration (fastlrnr/server/serve.py: header size limit, connection
# cap, header and body deadlines, graceful shutdown, JSON logs); settings from FASTLRNR_*.
# MALLOC_ARENA_MAX=2: glibc's malloc with 2 arenas, as in the image (docs/performance.md).
serve: $(VENV)/.stamp-serve
	MALLOC_ARENA_MAX=2 $(BIN)/python -m fastlrnr.server.serve --host $(HOST) --port $(PORT)

test: $(VENV)/.stamp-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff, configured in pyproject.toml: lint rules and the format check (`ruff format .` fixes it).
lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# From nothing to a shipped artifact: train MODEL's CPU default (resumes an interrupted
# run in runs/MODEL), then build and verify artifacts/MODEL. CONFIG overrides the config.
CONFIG ?= configs/$(MODEL)_cpu.json
train: $(VENV)/.stamp-dev
	$(BIN)/python -m fastlrnr.training.train --config $(CONFIG) --out runs/$(MODEL)
	$(BIN)/python -m fastlrnr.training.build_artifact runs/$(MODEL) --name $(MODEL)

# Rebuild artifacts/MODEL from an existing run (EIM settings: see --help).
artifact: $(VENV)/.stamp-dev
	$(BIN)/python -m fastlrnr.training.build_artifact runs/$(MODEL) --name $(MODEL) $(ARTIFACT_ARGS)

# The paper's experiment on the bundled artifacts (docs/evaluation.md and figures), then the
# whole-domain sweep (docs/sweep.md and heat maps).
evaluate: $(VENV)/.stamp-dev
	OMP_NUM_THREADS=1 $(BIN)/python -m fastlrnr.training.evaluate
	OMP_NUM_THREADS=1 $(BIN)/python -m fastlrnr.training.sweep_report

# The whole-domain accuracy sweep of the bundled artifacts alone.
sweep: $(VENV)/.stamp-dev
	OMP_NUM_THREADS=1 $(BIN)/python -m fastlrnr.training.sweep_report

# Timing scripts (ratios measured in one run; not tests).
benchmark: $(VENV)/.stamp-dev
	$(BIN)/python benchmarks/reference_convergence.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/fast_phase_step.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/fast_vs_full.py
	$(BIN)/python benchmarks/default_models.py
	$(BIN)/python benchmarks/field_eval.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/field_floor.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/request_stages.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/tolerance_sweep.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/classical_baseline.py

# requirements/serve.lock: the `serve` extra pinned with every file's sha256, which the Docker
# image installs (--require-hashes). Run after changing the serve extra, on Linux x86-64 with
# CPython 3.11 (the image's platform): pip-compile resolves for the interpreter it runs on.
lock: | $(BIN)/python
	$(BIN)/python -m pip install -q "pip-tools>=7.4"
	$(BIN)/pip-compile --quiet --generate-hashes --extra serve --strip-extras --no-emit-index-url \
	    --no-emit-find-links --output-file requirements/serve.lock pyproject.toml

clean:
	rm -rf $(VENV) runs .pytest_cache
