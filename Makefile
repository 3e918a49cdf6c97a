# tubewatch: `make run` starts everything, `make test` checks everything. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON_BOOT ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
# swagger-ui-dist from the npm registry, for the API's /api/docs (target api-viewer below).
API_VIEWER_VERSION := 5.35.0
API_VIEWER := .local/api-viewer/.installed-$(API_VIEWER_VERSION)
# ESLint from the npm registry, for the dashboard's JavaScript (targets eslint and lint below).
ESLINT_VERSION := 9.39.5
ESLINT := .local/eslint/.installed-$(ESLINT_VERSION)
# Grafana's dashboard types from the npm registry (the Grafana image's version) and the TypeScript
# compiler that checks deploy/grafana/dashboards/*.json against them (target grafana-schema below).
GRAFANA_SCHEMA_VERSION := 12.3.1
TYPESCRIPT_VERSION := 5.9.3
GRAFANA_SCHEMA := .local/grafana-schema/.installed-$(GRAFANA_SCHEMA_VERSION)-$(TYPESCRIPT_VERSION)

.PHONY: help install up down status run test lint typecheck pytest unit integration e2e lock clean soak soak-cluster audit

help:
	@echo "make run        start the local stack and all services (demo data without YOUTUBE_API_KEYS)"
	@echo "make test       install, start the stack, lint, type-check, audit and run every test"
	@echo "make up|down|status   the local RabbitMQ, MongoDB, Elasticsearch and Prometheus (CLUSTER=3: three-node clusters beside them)"
	@echo "make soak       the chaos soak (SOAK_SECONDS, default 600) with a report in .local/soak/"
	@echo "make soak-cluster   the failover soak on three-node clusters (SOAK_SECONDS, default 600); report in .local/soak-cluster/"
	@echo "make audit      pip-audit over requirements.lock (needs PyPI's advisory service)"
	@echo "make lock       re-resolve requirements.lock from pyproject.toml"
	@echo "make bench-api|bench-api-levers|bench-indexer|bench-fetcher|bench-notifier   benchmarks; results in .local/bench/"

$(VENV)/.synced: requirements.lock
	@$(PYTHON_BOOT) -c 'import sys; assert sys.version_info[:2] == (3, 11), "tubewatch needs Python 3.11"'
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync --quiet --python $(PY) requirements.lock
	@touch $@

install: $(VENV)/.synced $(API_VIEWER)

lock: install
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes \
		-o requirements.lock

# CLUSTER=3: cluster mode, three-node RabbitMQ, MongoDB and Elasticsearch clusters beside the single-node
# stack (environment in .local/cluster.env); a plain `make down` stops both, `make down CLUSTER=3` the clusters.
CLUSTER ?=
CLUSTER_ARGS := $(if $(CLUSTER),--cluster $(CLUSTER))

up: install
	$(PY) -m deploy.localstack up $(CLUSTER_ARGS)

down:
	@if [ -x $(PY) ]; then $(PY) -m deploy.localstack down $(CLUSTER_ARGS); else echo "nothing to stop (no $(VENV))"; fi

status: install
	$(PY) -m deploy.localstack status $(CLUSTER_ARGS)

run: up
	@./deploy/run.sh

lint: install $(ESLINT)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	.local/eslint/node_modules/.bin/eslint --max-warnings 0 services/api/static/js tests/js eslint.config.mjs

typecheck: install
	$(VENV)/bin/mypy services deploy tests

# Two lanes (pytest-xdist): the tests that mostly wait on timers beside the rest (tests/conftest.py,
# WAITING_LANE); most of the suite leaves the cores idle while it waits.
PYTEST_LANES := -n 2 --lanes

pytest: install browser $(GRAFANA_SCHEMA)
	$(VENV)/bin/pytest -p no:cacheprovider --durations=30 $(PYTEST_LANES)

test: install up lint jstest typecheck audit-if-reachable pytest

unit: install $(GRAFANA_SCHEMA)
	$(VENV)/bin/pytest -p no:cacheprovider tests/unit

integration: up browser
	$(VENV)/bin/pytest -p no:cacheprovider $(PYTEST_LANES) tests/integration tests/e2e

# Debian's Chromium for the dashboard's browser tests (Playwright's own browser download does not
# work here); installed once, only when missing.
CHROMIUM := /usr/bin/chromium
.PHONY: browser dashboard-screenshot
browser: $(CHROMIUM)

$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests"
	SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# Refresh the README's screenshot of the dashboard (docs/dashboard.png) over a freshly seeded catalogue.
dashboard-screenshot: up browser
	$(PY) -m tests.e2e.dashboard_support docs/dashboard.png

# The API's interactive viewer (/api/docs): swagger-ui-dist from the npm registry at a pinned version,
# installed into the git-ignored .local/ (never copied into the repository, never from a CDN).
.PHONY: api-viewer bench-api
api-viewer: $(API_VIEWER)

$(API_VIEWER):
	rm -rf .local/api-viewer && mkdir -p .local/api-viewer
	npm install --prefix .local/api-viewer --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
		swagger-ui-dist@$(API_VIEWER_VERSION)
	@touch $@

# The API at 1,000,000 videos under wrk (deploy/bench/api.py); results in .local/bench/api.json.
bench-api: up
	@command -v wrk >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get install -y -qq wrk || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq wrk; }; }
	$(PY) -m deploy.bench.api

# The dashboard's JavaScript: ESLint (eslint.config.mjs) at a pinned version, installed into the
# git-ignored .local/ like the API viewer; and the pure modules' unit tests (tests/js) with Node's
# own test runner, in en-US and UTC so that formatted numbers and times are fixed.
.PHONY: eslint jstest
eslint: $(ESLINT)

$(ESLINT):
	rm -rf .local/eslint && mkdir -p .local/eslint
	npm install --prefix .local/eslint --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
		eslint@$(ESLINT_VERSION) @eslint/js@$(ESLINT_VERSION)
	@touch $@

jstest:
	TZ=UTC LC_ALL=en_US.UTF-8 node --test tests/js/*.test.js

# The Grafana dashboard's type check (tests/unit/test_grafana_dashboard.py): @grafana/schema and
# typescript at pinned versions, installed into the git-ignored .local/ like the API viewer.
.PHONY: grafana-schema
grafana-schema: $(GRAFANA_SCHEMA)

$(GRAFANA_SCHEMA):
	rm -rf .local/grafana-schema && mkdir -p .local/grafana-schema
	npm install --prefix .local/grafana-schema --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
		@grafana/schema@$(GRAFANA_SCHEMA_VERSION) typescript@$(TYPESCRIPT_VERSION)
	@touch $@

# The fetcher's quota spent per new video and freshness (deploy/bench/fetcher.py); results in
# .local/bench/fetcher.json.
.PHONY: bench-fetcher
# Each Elasticsearch lever of the API's listings alone: an unsorted and a sorted index of the same
# 1,000,000 videos, crowd-shaped searches, totals bounded / off / exact (deploy/bench/api_levers.py).
.PHONY: bench-api-levers
bench-api-levers: up
	$(PY) -m deploy.bench.api_levers $(BENCH_API_LEVERS_ARGS)

bench-fetcher: up
	$(PY) -m deploy.bench.fetcher

# The indexer: videos/s through RabbitMQ into both stores, batch latency, and a reindex of 1,000,000
# videos (deploy/bench/indexer.py; BENCH_INDEXER_ARGS, e.g. "--events 50000 --indexers 2"); results in
# .local/bench/indexer.json.
.PHONY: bench-indexer
bench-indexer: up
	$(PY) -m deploy.bench.indexer $(BENCH_INDEXER_ARGS)

# The notifier: videos percolated per second against 10,000 saved searches, deliveries per second,
# and the latency from a batch's acknowledgement to the webhook receiver's 2xx at 100 videos/s
# (deploy/bench/notifier.py; BENCH_NOTIFIER_ARGS, e.g. "--videos 5000"); results in
# .local/bench/notifier.json.
.PHONY: bench-notifier
bench-notifier: up
	$(PY) -m deploy.bench.notifier $(BENCH_NOTIFIER_ARGS)

# Known vulnerabilities in the locked dependencies (needs PyPI's advisory data; fails if unreachable).
audit: install
	./deploy/audit.sh

# What `make test` runs: fails on a known vulnerability with a fix; warns (and goes on) when this
# machine reaches no advisory data at all.
.PHONY: audit-if-reachable
audit-if-reachable: install
	./deploy/audit.sh --if-reachable

# The long chaos soak on private servers (SOAK_SECONDS, default 600); report in .local/soak/.
soak: install
	$(PY) -m tests.soak --seconds $${SOAK_SECONDS:-600}

# The failover soak on cluster mode's three-node clusters (brought up if not running, and stopped
# again then); SOAK_SECONDS, default 600; report and chart in .local/soak-cluster/.
soak-cluster: install
	$(PY) -m tests.soak --cluster --seconds $${SOAK_SECONDS:-600}

clean: down
	rm -rf .local $(VENV)
