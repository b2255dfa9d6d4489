# modelops: `make up` runs the platform, `make test` runs the tests. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
export PYTHONPATH := $(CURDIR)/include:$(CURDIR)/plugins
export GX_ANALYTICS_ENABLED := False

.DEFAULT_GOAL := help
.PHONY: help venv up down status provision env clean test lint unit dag-tests integration bench demo

help:
	@echo "make up        start the local platform (creates .venv on first use)"
	@echo "make down      stop every process it started (data is kept)"
	@echo "make status    what runs where"
	@echo "make provision ingest queues + bucket notifications for every declared model"
	@echo "make clean     stop and remove all local state (.local/)"
	@echo "make test      lint, unit, DAG and integration tests"
	@echo "make demo      on a running stack: traffic, monitoring, drift, retrain, new champion"
	@echo "make bench     benchmarks"

# The venv is rebuilt when requirements change; a second `make up` reuses it.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip check
	@touch $@

venv: $(VENV)/.installed

up: venv
	$(PY) -m modelops.local.stack up

down:
	@if [ -x $(PY) ]; then $(PY) -m modelops.local.stack down; else echo "nothing to stop (no .venv)"; fi

status:
	@$(PY) -m modelops.local.stack status

# Ingest queue, dead-letter queue and bucket notification for every declared model (also part of `up`).
provision: venv
	$(PY) -m modelops.local.stack provision

# `eval $(make -s env)`: point boto3, MLflow and the airflow CLI in this shell at the local stack.
env:
	@$(PY) -m modelops.local.stack env

clean:
	@if [ -x $(PY) ]; then $(PY) -m modelops.local.stack clean; fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: venv
	$(BIN)/pytest -q -n auto --dist loadfile tests/unit

dag-tests: venv
	$(BIN)/pytest -q -s tests/dags

integration: venv
	$(BIN)/pytest -q -s tests/integration

test: lint unit dag-tests integration

# On a running stack (`make up`): the monitoring loop end to end. Options: DEMO_ARGS="--scenario new_category".
demo: venv
	$(PY) -m modelops.local.demo $(DEMO_ARGS)

bench: venv
	$(PY) -m benchmarks.run
