# The project's entry points. Each target creates or refreshes its virtual
# environment first, so `make serve` and `make test` work on a fresh machine
# that has only Python 3.11 and the package registries.
PYTHON ?= python3
VENV   ?= .venv
HOST   ?= 127.0.0.1
PORT   ?= 8000
MODEL  ?= cdr
BIN    := $(VENV)/bin

.PHONY: serve test train artifact evaluate benchmark clean

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

serve: $(VENV)/.stamp-serve
	@test -f service/app.py || { echo "make serve: the service is not built yet (service/app.py missing)"; exit 1; }
	$(BIN)/python -m uvicorn service.app:app --host $(HOST) --port $(PORT) --no-access-log

test: $(VENV)/.stamp-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# From nothing to a shipped artifact: train MODEL's CPU default (resumes an interrupted
# run in runs/MODEL), then build and verify artifacts/MODEL. CONFIG overrides the config.
CONFIG ?= training/configs/$(MODEL)_cpu.json
train: $(VENV)/.stamp-dev
	$(BIN)/python -m training.train --config $(CONFIG) --out runs/$(MODEL)
	$(BIN)/python -m training.build_artifact runs/$(MODEL) --name $(MODEL)

# Rebuild artifacts/MODEL from an existing run (EIM settings: see --help).
artifact: $(VENV)/.stamp-dev
	$(BIN)/python -m training.build_artifact runs/$(MODEL) --name $(MODEL) $(ARTIFACT_ARGS)

# The paper's experiment on the bundled artifacts: writes docs/evaluation.md and figures.
evaluate: $(VENV)/.stamp-dev
	OMP_NUM_THREADS=1 $(BIN)/python -m training.evaluate

# Timing scripts (ratios measured in one run; not tests).
benchmark: $(VENV)/.stamp-dev
	$(BIN)/python benchmarks/reference_convergence.py
	$(BIN)/python benchmarks/fast_vs_full.py
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/fast_phase_step.py
	$(BIN)/python benchmarks/default_models.py
	$(BIN)/python benchmarks/field_eval.py

clean:
	rm -rf $(VENV) runs .pytest_cache
