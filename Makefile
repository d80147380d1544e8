# mmrl: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-requirements

.PHONY: demo test test-all lint bench reproduce ui tracking-server clean-runs .chromium

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
test: $(STAMP) .chromium
	$(PY) -m pytest

# Headless Chromium for the browser tests (tests/tracking/test_mlflow_ui.py): Debian's package,
# installed when missing on a machine that allows it (root with apt-get); elsewhere a note, and
# those tests skip.
.chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Chromium for the browser tests (apt-get install chromium)..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
			>/dev/null) || echo "Note: apt-get could not install chromium."; \
	else \
		echo "Note: no chromium, and installing it needs root and apt-get: the browser tests skip."; \
	fi

test-all: $(STAMP) .chromium
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

## tracking-server: a shared MLflow server on PostgreSQL with proxied artifacts (Ctrl-C stops it)
## make tracking-server TRACKING_DIR=/srv/mmrl-tracking [TRACKING_PORT=5000] [TRACKING_HOST=0.0.0.0]
TRACKING_DIR  ?= /var/tmp/mmrl-tracking
TRACKING_PORT ?=
TRACKING_HOST ?= 127.0.0.1
tracking-server: $(STAMP)
	$(PY) -m tracking.server --dir $(TRACKING_DIR) --host $(TRACKING_HOST) \
		$(if $(TRACKING_PORT),--port $(TRACKING_PORT))
