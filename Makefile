# modelops: `make up` runs the platform, `make test` runs the tests. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
export PYTHONPATH := $(CURDIR)/include:$(CURDIR)/plugins
export GX_ANALYTICS_ENABLED := False

.DEFAULT_GOAL := help
.PHONY: help venv lock up down status provision env clean test lint unit dag-tests integration browser bench demo

help:
	@echo "make up        start the local platform (creates .venv on first use)"
	@echo "make down      stop every process it started (data is kept)"
	@echo "make status    what runs where"
	@echo "make provision ingest queues + bucket notifications for every declared model"
	@echo "make clean     stop and remove all local state (.local/)"
	@echo "make test      lint, unit, DAG and integration tests"
	@echo "make demo      on a running stack: traffic, monitoring, drift, retrain, new champion"
	@echo "make bench     benchmarks"
	@echo "make lock      regenerate requirements*.lock from requirements*.txt (LOCK_ARGS=--upgrade to move on)"

# The venv installs the lock (every transitive package pinned), as the image and CI do; it is
# rebuilt when the lock changes, and a second `make up` reuses it.
$(VENV)/.installed: requirements.lock requirements-dev.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.lock
	$(PY) -m pip check
	@touch $@

venv: $(VENV)/.installed

# The browser test of the Models pages drives Debian's chromium (Playwright's own browsers are
# downloaded from the web, which these machines cannot reach); installed once if missing.
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Regenerate the locks after editing requirements*.txt (pip-tools, from the index pip is set up for).
# requirements.lock: the runtime (image, `make up`); requirements-dev.lock: the same plus test tools.
LOCK_FLAGS := --quiet --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links
lock: venv
	$(BIN)/pip-compile $(LOCK_FLAGS) $(LOCK_ARGS) -o requirements.lock requirements.txt
	$(BIN)/pip-compile $(LOCK_FLAGS) $(LOCK_ARGS) -o requirements-dev.lock requirements-dev.txt

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

# include/models: the tests data scientists keep beside their model's code run with ours.
unit: venv
	$(BIN)/pytest -q -n auto --dist loadfile tests/unit include/models

dag-tests: venv
	$(BIN)/pytest -q -s tests/dags

# INTEGRATION=<test files> runs a part of the tier (.ci/run's Celery pass).
INTEGRATION ?= tests/integration
integration: venv browser
	$(BIN)/pytest -q -s --durations=15 $(INTEGRATION)

test: lint unit dag-tests integration

# On a running stack (`make up`): the monitoring loop end to end. Options: DEMO_ARGS="--scenario new_category".
demo: venv
	$(PY) -m modelops.local.demo $(DEMO_ARGS)

bench: venv
	$(PY) -m benchmarks.run

# --- Production shape (docker-compose.yaml; issue 12). IMAGE/BASE_IMAGE/COMPOSE_ARGS override. ---
IMAGE ?= modelops:latest
BASE_IMAGE ?= python:3.11-slim-bookworm
.PHONY: wheels image compose-up compose-down
# The image's packages, built on the host from the lock: the lock itself, and what bookworm's
# Python 3.11.2 needs beyond it (docker/requirements-bookworm.txt, fetched whatever the host's Python).
wheels: venv
	$(BIN)/pip wheel --quiet -r requirements.lock -w wheels/
	sed -n 's/^\([^#;]*==[^ ;]*\).*/\1/p' docker/requirements-bookworm.txt | xargs -r $(BIN)/pip download --quiet --no-deps -d wheels/

image: wheels
	docker build $(DOCKER_BUILD_ARGS) -t $(IMAGE) --build-arg BASE_IMAGE=$(BASE_IMAGE) \
	  --build-arg GIT_COMMIT=$$(git describe --always --dirty --abbrev=40) --build-arg BUILD_TIME=$$(date -u +%FT%TZ) .

compose-up:
	MODELOPS_IMAGE=$(IMAGE) docker-compose up -d $(COMPOSE_ARGS)

compose-down:
	docker-compose down $(COMPOSE_ARGS)
