# The project's entry points. Each target creates or refreshes its virtual
# environment first, so `make serve` and `make test` work on a fresh machine
# that has only Python 3.11 and the package registries.
PYTHON ?= python3
VENV   ?= .venv
HOST   ?= 127.0.0.1
PORT   ?= 8000
MODEL  ?= cdr
BIN    := $(VENV)/bin

.PHONY: serve test train evaluate artifact benchmark clean

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
	$(BIN)/python -m uvicorn service.app:app --host $(HOST) --port $(PORT)

test: $(VENV)/.stamp-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Train one domain's CPU default from scratch and write its checkpoint (see README).
train: $(VENV)/.stamp-dev
	$(BIN)/python -m training.train --config training/configs/$(MODEL)_cpu.json --out runs/$(MODEL)

clean:
	rm -rf $(VENV) runs .pytest_cache
