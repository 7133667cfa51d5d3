# medxfer: the two commands.  `make demo` and `make test` each create .venv if missing and
# install the pinned dependencies (pyproject.toml + constraints.txt) before they run.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.medxfer-installed
# Tests: the whole suite, Ray and MLflow integration tests included.
PYTEST_ARGS ?=

.PHONY: demo test lint install clean-venv help

help:
	@echo "make demo   - create .venv, install, run the main job on the embedded default (offline)"
	@echo "make test   - create .venv, install, run the linters, then the whole test suite"
	@echo "make lint   - layer contracts (lint-imports) and ruff only"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/medxfer demo

# Layer contracts from pyproject.toml ([tool.importlinter]) and ruff ([tool.ruff]); `test` runs
# them first so a layer breach or lint error fails in seconds, before the long suite starts.
lint: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check platform tests

test: lint
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)
	# PostgreSQL for tests/test_postgres.py (Debian keeps its binaries off PATH, under /usr/lib/postgresql)
	command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq postgresql)
	$(PY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
