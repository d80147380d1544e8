# mmrl: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-requirements

.PHONY: demo test test-all lint bench reproduce ui clean-runs

# Create the virtual environment when missing and install the pinned requirements
# (again whenever requirements.txt changes).
$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned requirements into $(VENV) (a few minutes the first time)..."
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --progress-bar off -r requirements.txt
	@touch $(STAMP)

## demo: install, then run the main job on the built-in default config
demo: $(STAMP)
	$(PY) -m experiments.demo

## test: the test suite (slow tests excluded; `make test-all` includes them)
test: $(STAMP)
	$(PY) -m pytest

test-all: $(STAMP)
	$(PY) -m pytest -m ""

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

bench: $(STAMP)
	$(PY) benchmarks/env_throughput.py

reproduce: $(STAMP)
	$(PY) -m experiments.reproduce as2008

## ui: browse every run in the MLflow UI (project store)
ui: $(STAMP)
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --port 5000
