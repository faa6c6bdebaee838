# Syncline developer commands. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint demo bench chaos schema docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the whole test suite (pytest exits non-zero when no test ran).
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## ruff + mypy (strict) + the import layering (tests/test_layering.py), all must be clean.
lint: $(STAMP)
	$(BIN)/ruff check runtime connectors tests bench
	$(BIN)/ruff format --check runtime connectors tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_layering.py

## The service with the bundled example project on SQLite and simulated systems (make demo PORT=8091 for another port).
PORT ?= 8080
demo: $(STAMP)
	$(BIN)/syncline demo --port $(PORT)

## Benchmarks, full length (CI runs them in --smoke mode from the tests).
bench: $(STAMP)
	$(BIN)/python bench/run_all.py

## Fault-injection suite in full (make test runs the short form).
chaos: $(STAMP)
	SYNCLINE_CHAOS=full $(BIN)/python -m pytest -q -m chaos tests

## Regenerate the committed JSON Schema, reference page and diagnostics page from the models.
docs: $(STAMP)
	$(BIN)/python -m runtime.docgen

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
