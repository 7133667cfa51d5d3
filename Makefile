# medxfer: the two commands.  `make demo` and `make test` each create .venv if missing and
# install the pinned dependencies (pyproject.toml + constraints.txt) before they run.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.medxfer-installed
# Tests: the whole suite, Ray and MLflow integration tests included.
PYTEST_ARGS ?=

.PHONY: demo test install clean-venv help

help:
	@echo "make demo   - create .venv, install, run the main job on the embedded default (offline)"
	@echo "make test   - create .venv, install, run the whole test suite"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/medxfer demo

test: $(STAMP)
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)
	# PostgreSQL for tests/test_postgres.py (Debian keeps its binaries off PATH, under /usr/lib/postgresql)
	command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq postgresql)
	$(PY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
