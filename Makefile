# The two commands: `make run` (everything up, from nothing) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
PYTHON_BOOT ?= python3
# Slow builds (the Go binaries) are cached here; CI may keep this folder between runs.
export TOOLS_BIN ?= $(ROOT)/.cache/bin
export LOCAL_DIR ?= $(ROOT)/.local
STAMP := $(VENV)/.installed

.PHONY: help setup venv tools ops-tools protos protos-check stack-up run stop status migrate \
        test test-unit test-integration test-e2e test-ops lint rules fmt lock bench clean

help:
	@echo "make run    - set up everything and start the whole suite (local PostgreSQL, FerretDB, fake provider)"
	@echo "make test   - set up everything and run unit, integration and end-to-end tests"
	@echo "make stop   - stop everything make run started"
	@echo "other: setup protos protos-check lint rules fmt migrate status test-unit test-integration test-e2e test-ops bench"

$(STAMP): requirements-dev.lock pyproject.toml
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/llmgw-repo.pth
	touch $(STAMP)

venv: $(STAMP)

tools:
	scripts/build_go_tools.sh ferretdb

# Debian's pgbouncer and prometheus (promtool), installed when missing: tests/ops, make lint.
ops-tools:
	scripts/ops_tools.sh

setup: venv tools ops-tools

protos: venv
	scripts/gen_protos.sh

# Fails when gen/ differs from what protos/ would generate now.
protos-check: venv
	@tmp=$$(mktemp -d); scripts/gen_protos.sh $$tmp >/dev/null; \
	if diff -r -x __pycache__ $$tmp/llmgw gen/llmgw >/dev/null; then echo "protos: generated code is current"; rm -rf $$tmp; \
	else echo "protos: gen/ is stale: run 'make protos' and commit" >&2; rm -rf $$tmp; exit 1; fi

stack-up: setup
	scripts/stack.sh deps-up

migrate: stack-up
	IDENTITY_DATABASE_URL=$${IDENTITY_DATABASE_URL:-$$(scripts/pg.sh url identity)} $(PY) -m identity_svc.migrate
	QUOTA_DATABASE_URL=$${QUOTA_DATABASE_URL:-$$(scripts/pg.sh url quota)} $(PY) -m quota_svc.migrate

run: stack-up
	scripts/stack.sh services-up
	@scripts/stack.sh seed
	@echo; scripts/stack.sh status; echo; echo "make stop stops everything."

status:
	@scripts/stack.sh status

stop:
	scripts/stack.sh down

test: stack-up protos-check
	$(MAKE) --no-print-directory test-unit test-integration test-e2e test-ops

test-unit: venv
	$(PY) -m pytest -q tests/unit

test-integration: stack-up
	$(PY) -m pytest -q tests/integration

test-e2e: stack-up
	$(PY) -m pytest -q tests/e2e

# Ops drills on real components (tests/ops): PgBouncer, a PostgreSQL failover, replicas
# joining, load shedding, Prometheus evaluating the dashboards and alerts, pg_dump/restore.
test-ops: stack-up
	$(PY) -m pytest -q tests/ops

# The alert rules are valid and their unit tests pass (promtool, Debian's prometheus).
rules: ops-tools
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml

lint: venv rules
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy gateway_common identity_svc quota_svc history_svc llm_svc gatewayctl bench devtools
	cd protos && $(VENV)/bin/buf lint
	scripts/buf_breaking.sh

fmt: venv
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# Re-pin every dependency after changing pyproject.toml (runtime and dev locks).
lock: venv
	$(PY) -m pip install -q -U --no-build-isolation -e '.[dev]'
	$(PY) scripts/lock.py

clean: stop
	rm -rf $(LOCAL_DIR)

# Load tests with ghz and hey (bench/README.md): its own ports and fresh databases, so a
# `make run` stack is left alone; CPU per process, LiteLLM and Portkey beside Chat; report in
# bench/results/<time>/. BENCH_QUICK=1 for a shorter run, BENCH_PROFILE=1 adds py-spy on Chat.
bench: stack-up
	scripts/bench.sh
