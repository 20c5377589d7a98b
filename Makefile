# Two entry points (see README): `make demo` and `make test`. Both install everything first.
PYTHON ?= python3.11
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
