# Two entry points (see README): `make demo` and `make test`. Both install everything first.
# The first of python3.11, 3.12, 3.13 that runs; override with `make PYTHON=/path/to/python`.
ifndef PYTHON
PYTHON := $(firstword $(foreach v,3.11 3.12 3.13,\
	$(shell python$(v) -c "import sys" >/dev/null 2>&1 && echo python$(v))))
endif
ifeq ($(strip $(PYTHON)),)
$(error no python3.11, python3.12 or python3.13 found; run make PYTHON=/path/to/python)
endif
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean browser

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/leadscore demo --workdir demo

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

browser:
	bash scripts/ensure-chromium.sh

test: $(STAMP) lint browser
	$(BIN)/python -m pytest -q -m "seed or not seed"

bench: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache
