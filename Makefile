# Every target does its own set-up and is safe to run twice. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
SUPABASE := node_modules/.bin/supabase
TEST_DB ?= mx_memberships_test
DEMO_DB ?= mx_memberships_demo
TEST_DB_URL = .run/$(TEST_DB).url
DEMO_SECONDS ?= 30
BENCH_ARGS ?=
BENCH_DASHBOARD_ARGS ?=
export DEMO_SECONDS

.PHONY: help setup system-packages db-url test-db schema lint sql-lint db-lint pgtap pytest test demo screenshots bench bench-dashboard chaos clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@echo "==> python environment ($(VENV))"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@echo "==> wheelhouse (.run/wheelhouse: the wheel's dependencies, for the offline image test)"
	@$(PY) -m pip wheel -q --wheel-dir .run/wheelhouse . 'setuptools>=68'
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> Supabase CLI (npm, pinned in package-lock.json)"
	@npm ci --silent --no-audit --no-fund
	@touch $@

system-packages: ## Install the Debian packages Postgres tests need (pgTAP, pg_prove, plpgsql_check) when missing
	@bash scripts/system_packages.sh

setup: $(VENV)/.installed node_modules/.installed system-packages ## Create .venv, install Python and npm packages, system packages

db-url: $(VENV)/.installed ## Print the database server every command uses
	@$(PY) -m scripts.localdb url

test-db: setup ## (Re)create the test database: platform layer + migrations
	@echo "==> fresh test database $(TEST_DB)"
	@mkdir -p .run
	@$(PY) -m scripts.localdb fresh $(TEST_DB) > $(TEST_DB_URL)
	@$(SUPABASE) --workdir . migration list --db-url "$$(cat $(TEST_DB_URL))" 2>/dev/null

schema: setup ## Regenerate supabase/schema/ (today's schema, one file per schema) from the migrations
	@$(PY) -m scripts.schema write

lint: setup ## ruff, mypy --strict, sqlfluff
	@echo "==> ruff"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@echo "==> mypy --strict"
	@$(VENV)/bin/mypy
	@$(MAKE) --no-print-directory sql-lint

sql-lint: setup ## sqlfluff on every SQL file
	@echo "==> sqlfluff"
	@$(VENV)/bin/sqlfluff lint --disable-progress-bar supabase sql

db-lint: test-db ## supabase db lint on the test database (fails on any error)
	@echo "==> supabase db lint"
	@$(SUPABASE) --workdir . db lint --db-url "$$(cat $(TEST_DB_URL))" --schema api,app,private --level error --fail-on error

pgtap: test-db ## pgTAP tests (supabase/tests) through pg_prove
	@echo "==> pgTAP"
	@bash scripts/pgtap.sh "$$(cat $(TEST_DB_URL))"

pytest: setup ## pytest (unit and integration tests on real Postgres and HTTP)
	@echo "==> pytest"
	@$(VENV)/bin/pytest -q

test: setup lint db-lint pgtap pytest ## Everything CI runs: lint, db lint, pgTAP, pytest
	@echo "==> all checks passed"

demo: setup ## Local run: database, stand-in, webhook, worker, simulated traffic, summary
	@$(PY) -m scripts.demo

screenshots: setup ## Each dashboard page at desktop and phone width into docs/screenshots/ (Chromium)
	@$(PY) -m scripts.screenshots

bench: setup ## Benchmarks (ratios against their ceilings), not part of make test
	@WITH_BENCH_TOOLS=1 bash scripts/system_packages.sh
	@$(PY) -m scripts.bench $(BENCH_ARGS)
	@$(PY) -m scripts.bench.dashboard_page $(BENCH_DASHBOARD_ARGS)

bench-dashboard: setup ## Dashboard benchmark: the memberships page beside its api calls; live update latency
	@$(PY) -m scripts.bench.dashboard_page $(BENCH_DASHBOARD_ARGS)

chaos: setup ## The longer reliability suite, not part of make test
	@$(VENV)/bin/pytest -q -m chaos tests/reliability

clean: ## Stop the private cluster; remove the virtualenv, node_modules, caches, .localdb
	-test -x $(PY) && $(PY) -m scripts.localdb stop
	rm -rf $(VENV) node_modules .localdb .pytest_cache .mypy_cache .ruff_cache .hypothesis .run
