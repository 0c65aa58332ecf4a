# AEX: two commands on a fresh machine: `make run` and `make test`. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8080
DATA ?= ./data
# make run-cluster: WORKERS server processes on one port, on PostgreSQL, Redis and NATS.
WORKERS ?= 2
DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
REDIS_URL ?= redis://127.0.0.1:6379/0
NATS_URL ?= nats://127.0.0.1:4222

VENV := .venv
BIN := $(VENV)/bin
UV_HOME := .cache/uv-bootstrap
UV := $(UV_HOME)/bin/uv
UV_VERSION := 0.13.9
INSTALLED := $(VENV)/.installed
# `make run` installs the server alone (the core, the SDK and the `server` extra: no
# JupyterLab, no Dask, no mypy); `make test` and the workbench targets install everything.
SERVER_INSTALLED := $(VENV)/.installed-server
# promtool, from Debian's prometheus package: unpacked here, not installed (installing the
# package would start a Prometheus server); tests/deploy/tools.py looks here, then on PATH.
PROMTOOL := .cache/prometheus/usr/bin/promtool

.PHONY: install install-server run test lint typecheck pytest fuzz soak bench bench-save bench-compare profile-api lab sim run-cluster clean deploy-tools deploy-check

# uv itself comes from PyPI into a private bootstrap venv; the lock file pins everything else.
$(UV):
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(INSTALLED): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	touch $@ $(SERVER_INSTALLED)

# --inexact: a venv that already holds everything (make test) keeps it.
$(SERVER_INSTALLED): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --extra server --no-dev --inexact --python $(PYTHON)
	touch $@

install: $(INSTALLED)

install-server: $(SERVER_INSTALLED)

run: install-server
	$(BIN)/aex serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

run-cluster: install-server
	AEX_DATABASE_URL=$(DATABASE_URL) AEX_REDIS_URL=$(REDIS_URL) AEX_NATS_URL=$(NATS_URL) \
	  $(BIN)/aex serve --workers $(WORKERS) --host $(HOST) --port $(PORT) --data-dir $(DATA)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy aex serve

# Three workers on the two cores: the suite waits on servers, engines and sockets half the
# time, so a third worker fills the waits (a fresh-clone pytest took 14 min 29 s with 2 and
# 11 min 52 s with 3). One file stays on one worker (its module fixtures are started once);
# the slowest files go first (tests/conftest.py), so that no worker is left alone with them.
PYTEST_WORKERS ?= 3
pytest: install deploy-tools
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

# The checks of Dockerfile, compose.yaml, deploy/k8s, deploy/prometheus and deploy/grafana
# (kustomize, the Kubernetes schemas, hadolint, promtool and a real server's /metrics).
deploy-check: install deploy-tools
	$(BIN)/pytest tests/deploy

deploy-tools:
	@if [ ! -x $(PROMTOOL) ] && ! command -v promtool >/dev/null; then $(MAKE) --no-print-directory $(PROMTOOL); fi

$(PROMTOOL):
	rm -rf .cache/prometheus && mkdir -p .cache/prometheus/deb
	cd .cache/prometheus/deb && { apt-get download prometheus 2>/dev/null \
	  || { apt-get update -qq && apt-get download prometheus; }; }
	dpkg-deb -x .cache/prometheus/deb/prometheus_*.deb .cache/prometheus/root
	install -D -m 0755 .cache/prometheus/root/usr/bin/promtool $@
	rm -rf .cache/prometheus/deb .cache/prometheus/root
	$@ --version

test: lint typecheck pytest

# Not part of `make test`: schemathesis's deeper pass over every operation on both backends
# (FUZZ_EXAMPLES cases per operation, >= 10,000 in all; tests/serve/contract_fuzz.py).
FUZZ_EXAMPLES ?= 200
fuzz: install
	$(BIN)/python -m tests.serve.contract_fuzz --examples $(FUZZ_EXAMPLES)

# Not part of `make test`: the ledger state machine (disputes, withdrawals, holds) for at least
# SOAK_STEPS steps, every invariant checked after every step (tests/core/test_ledger_soak.py).
SOAK_STEPS ?= 100000
soak: install
	AEX_SOAK=1 AEX_SOAK_STEPS=$(SOAK_STEPS) $(BIN)/pytest tests/core/test_ledger_soak.py -m soak -s -q --timeout=0

# make bench [BENCH="bench_scoring bench_sim"]: figures as ratios, summary in bench/results/.
BENCH ?=
BENCH_SAVED ?= bench/results/saved.json
BENCH_TOLERANCE ?= 0.10
bench: install
	$(BIN)/python -m bench $(BENCH)

# Keep the latest summary as the one later runs are compared against.
bench-save:
	cp bench/results/latest.json $(BENCH_SAVED)

# The latest run against the saved one: exit 1 when a ratio fell by more than the tolerance.
bench-compare: install
	$(BIN)/python -m bench --compare $(BENCH_SAVED) bench/results/latest.json --tolerance $(BENCH_TOLERANCE)

# Where a request's CPU goes: py-spy flame graphs (docs/img/flame-*.svg) and the per-layer CPU
# per request (bench/results/profile-*.json) of GET /v1/balance, POST /v1/deposits and
# POST /v1/bids under wrk. Needs wrk (apt-get install -y wrk) and ptrace (root here).
PROFILE_ROUTES ?=
profile-api: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m bench.profile_api $(PROFILE_ROUTES)

# The notebooks at full size (AEX_NOTEBOOK_SIZE=full: e.g. 20 seeds x 200 ticks in 03); `make test`
# executes them at the small size.
lab: install
	AEX_NOTEBOOK_SIZE=full $(BIN)/jupyter lab notebooks/

sim: install
	$(BIN)/aex sim scenarios/default.toml --out runs/default.duckdb

clean:
	rm -rf $(VENV) $(UV_HOME) .cache/prometheus .pytest_cache .mypy_cache .ruff_cache
