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

.PHONY: install run test lint typecheck pytest bench bench-save bench-compare lab sim run-cluster clean

# uv itself comes from PyPI into a private bootstrap venv; the lock file pins everything else.
$(UV):
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(INSTALLED): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

install: $(INSTALLED)

run: install
	$(BIN)/aex serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

run-cluster: install
	AEX_DATABASE_URL=$(DATABASE_URL) AEX_REDIS_URL=$(REDIS_URL) AEX_NATS_URL=$(NATS_URL) \
	  $(BIN)/aex serve --workers $(WORKERS) --host $(HOST) --port $(PORT) --data-dir $(DATA)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy aex serve

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

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

lab: install
	$(BIN)/jupyter lab notebooks/

sim: install
	$(BIN)/aex sim scenarios/default.toml --out runs/default.duckdb

clean:
	rm -rf $(VENV) $(UV_HOME) .pytest_cache .mypy_cache .ruff_cache
