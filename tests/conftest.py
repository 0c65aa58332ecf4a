"""Shared fixtures. `store` runs each store contract test once per real backend: SQLite, and
PostgreSQL (the local server; each test gets a fresh schema, dropped afterwards)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from serve.settlement.sqlite_ledger import SqliteLedger
from serve.stores.base import IdempotencyStore, KeyStore, LedgerStore
from serve.stores.market_db import MarketDb, SqliteMarketDb
from serve.stores.sqlite import SqliteStore

# The local PostgreSQL of .ci/run (trust authentication); AEX_TEST_DATABASE_URL overrides it.
TEST_DATABASE_URL = os.environ.get(
    "AEX_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


# Files that take tens of seconds each (real engines stopped and restarted, thousands of
# auctions replayed, notebooks, two-process clusters), run first under `make test`'s two
# workers (pytest-xdist, --dist loadfile) so that the short files fill in around them.
SLOW_FIRST = (
    "tests/faults/",
    "tests/sim/test_conformance.py",
    "tests/sim/test_notebooks.py",
    "tests/sim/test_study.py",
    "tests/sim/test_sensitivity.py",
    "tests/sim/test_tune_backtest_sweep.py",
    "tests/serve/test_market_payment_rule.py",
    "tests/core/test_scoring_reference.py",
    "tests/scale/",
    "tests/serve/test_stream_and_subscription_limits.py",
    "tests/serve/test_market_restart.py",
    "tests/serve/test_verification_billing.py",
    "tests/serve/test_market_export.py",
    "tests/serve/test_schemathesis.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The SLOW_FIRST files before the rest; otherwise collection order (a stable sort)."""

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return next(
            (n for n, slow in enumerate(SLOW_FIRST) if path.startswith(slow)), len(SLOW_FIRST)
        )

    items.sort(key=rank)


@dataclass(frozen=True)
class Stores:
    backend: str
    keys: KeyStore
    idempotency: IdempotencyStore
    ledger: LedgerStore
    market: MarketDb


def fresh_schema_name() -> str:
    return f"aex_test_{uuid.uuid4().hex[:16]}"


def _sqlite(tmp_path: Path) -> Generator[Stores]:
    store = SqliteStore(tmp_path / "aex.sqlite3", synchronous="NORMAL")
    yield Stores("sqlite", store, store, SqliteLedger(store), SqliteMarketDb(store))


def _postgres(tmp_path: Path) -> Generator[Stores]:
    from serve.settlement.postgres_ledger import PostgresLedger
    from serve.stores.market_db import PostgresMarketDb
    from serve.stores.postgres import PostgresStore

    store = PostgresStore(TEST_DATABASE_URL, schema=fresh_schema_name(), pool_min=1, pool_max=8)
    try:
        yield Stores("postgres", store, store, PostgresLedger(store), PostgresMarketDb(store))
    finally:
        store.drop_schema()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    factories = {"sqlite": _sqlite, "postgres": _postgres}
    yield from factories[request.param](tmp_path)


@contextmanager
def write_lock_held(database: Path) -> Iterator[None]:
    """Another connection holds the SQLite file's write lock for the block, as a second
    process, a long backup or the CLI would."""
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()
