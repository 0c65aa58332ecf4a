"""Shared fixtures. `store` runs each store contract test once per real backend: SQLite now;
the PostgreSQL/Redis backends of the scale-out issue join the params list."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from serve.stores.base import IdempotencyStore, KeyStore, LedgerStore
from serve.stores.sqlite import SqliteStore
from serve.stores.sqlite_ledger import SqliteLedger


@dataclass(frozen=True)
class Stores:
    backend: str
    keys: KeyStore
    idempotency: IdempotencyStore
    ledger: LedgerStore


def _sqlite(tmp_path: Path) -> Stores:
    store = SqliteStore(tmp_path / "aex.sqlite3", synchronous="NORMAL")
    return Stores("sqlite", store, store, SqliteLedger(store))


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    factories = {"sqlite": _sqlite}
    return factories[request.param](tmp_path)
