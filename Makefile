# siteedge: `make demo` runs a simulated site, `make test` runs every check CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	hil/scripts/ensure-system-deps.sh mosquitto
	$(BIN)/siteedge demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	hil/scripts/ensure-system-deps.sh mosquitto chromium shellcheck
	hil/scripts/ensure-node-deps.sh
	$(BIN)/pytest -q $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

bench: $(STAMP)
	hil/scripts/ensure-system-deps.sh mosquitto
	$(BIN)/python -m hil.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
