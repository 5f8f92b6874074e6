# emotionkd: the two commands a newcomer needs are `make demo` and `make test` (README.md).
# Both install into a local virtual environment (.venv) on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is pinned here (constraints.txt), not in pyproject.toml, so users keep a free choice.
INSTALL := $(PIP) install --quiet --constraint constraints.txt
STAMP := $(VENV)/.installed-stamp

.PHONY: all demo test lint install clean bench pipeline

all: test

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(INSTALL) --upgrade pip setuptools wheel
	$(INSTALL) --editable '.[train,dev]'
	touch $(STAMP)

install: $(STAMP)

## make demo: the main job on embedded defaults and a simulated sensor
demo: $(STAMP)
	$(VENV)/bin/emotionkd-sdk demo

## make test: lint, the import-layer rules, and the test suite
test: $(STAMP) lint
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) tests/benchmarks/startup_budget.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
