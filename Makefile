# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run test lint install bootstrap check-services clean chromium pgbouncer web-client

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

check-services: install
	$(BIN)/python scripts/check_services.py --create-database

bootstrap: check-services
	$(BIN)/python manage.py bootstrap
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py ensure_admin

METRICS_DIR := .run/prometheus

run: bootstrap
	rm -rf $(METRICS_DIR) && mkdir -p $(METRICS_DIR)
	@echo "Starting web (http://$(HOST):$(PORT)/), Celery worker and beat; Ctrl-C stops all three."
	PROMETHEUS_MULTIPROC_DIR=$(CURDIR)/$(METRICS_DIR) exec $(BIN)/honcho start --procfile Procfile --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

chromium:
	@command -v chromium >/dev/null 2>&1 || { echo "Installing Debian's chromium for the browser tests"; \
		(apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)); }

# The cluster tests (tests/cluster) start their own PostgreSQL primary, replica and PgBouncer.
pgbouncer:
	@command -v pgbouncer >/dev/null 2>&1 || test -x /usr/sbin/pgbouncer || { echo "Installing Debian's pgbouncer for the cluster tests"; \
		(apt-get install -y -qq pgbouncer >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq pgbouncer)); }

# The TypeScript emitter: installed from its lockfile, built (the browser tests load the
# build) and unit-tested with node's test runner.
web-client:
	cd clients/web && npm ci --no-audit --no-fund --loglevel=error && npm test

test: install chromium pgbouncer web-client
	$(BIN)/python scripts/check_services.py
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
