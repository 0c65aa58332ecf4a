"""The scale-out store: PostgreSQL through psycopg 3 and a psycopg_pool connection pool.

Chosen by `AEX_DATABASE_URL=postgresql://...` (SQLite stays the default). It runs the
same SQL as serve/stores/sqlite.py (the KeyStore and IdempotencyStore of
serve/stores/identity_store.py, registry_store.py and idempotency_store.py; the LedgerStore is
serve/settlement/postgres_ledger.py) and passes the same contract tests, so several server
processes can share one database; this module holds only what PostgreSQL does differently:

- Connections are autocommit; every write is one explicit transaction (READ COMMITTED) that
  takes the row locks it needs up front (`SELECT ... FOR UPDATE`), so concurrent processes
  serialise on the rows they share and on nothing else.
- Migrations run under a transaction-scoped advisory lock: two processes starting at once
  apply each migration exactly once (recorded in schema_version, as on SQLite).
- Every pooled connection is taken through the process's `postgres` circuit breaker
  (serve/breakers.py, `connection`): a connection-level error (the server gone, refusing
  connections, shutting down, or no connection from the pool in time) counts as a failure and
  fails the request with `DependencyUnavailable` (503 `dependency-unavailable` with
  `Retry-After`); five in a row open the breaker, and while it is open every request fails at
  once, without waiting on the pool, until the 10 s probe. The pool reconnects on its own, so
  the probe that finds PostgreSQL back closes the breaker: no restart of the exchange.
- `schema` names the PostgreSQL schema holding the tables (created when missing): tests give
  each test its own and drop it afterwards (`drop_schema`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from aex.core import BreakerState
from serve.breakers import CircuitBreaker, DependencyUnavailable
from serve.stores.idempotency_store import IdempotencyRecords
from serve.stores.identity_store import IdentityStore
from serve.stores.postgres_migrations import PG_MIGRATIONS
from serve.stores.registry_store import RegistryStore
from serve.stores.sql import PgSql, Sql, schema_version_in

# Connections per process: handlers run in a thread pool, the gateway in the event loop.
POOL_CONNECTIONS_MIN = 2
POOL_CONNECTIONS_MAX = 16
POOL_WAIT_TIMEOUT_S = 30.0
# The wait for a pooled connection while the breaker suspects PostgreSQL (failures counted, or
# the half-open probe): a dead server must not hold requests for the whole pool timeout.
SUSPECT_WAIT_TIMEOUT_S = 2.0
BREAKER_NAME = "postgres"
# SQLSTATEs of a connection that is gone: class 08 (connection exception) and the server's
# shutdown codes (admin_shutdown, crash_shutdown, cannot_connect_now).
_OUTAGE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
# The advisory lock key that serialises migrations across processes ("aex" in ASCII).
_MIGRATION_LOCK_KEY = 0x616578
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def is_postgres_url(url: str | None) -> bool:
    return url is not None and url.startswith(("postgresql://", "postgres://"))


def is_outage(error: psycopg.Error) -> bool:
    """Whether an error says PostgreSQL is unreachable (not that a statement was refused)."""
    if isinstance(error, psycopg.InterfaceError):
        return True  # the connection is closed
    if not isinstance(error, psycopg.OperationalError):
        return False
    state = error.sqlstate  # None: no server answer at all (refused, reset, pool timeout)
    return state is None or state.startswith("08") or state in _OUTAGE_SQLSTATES


class PostgresStore(IdentityStore, RegistryStore, IdempotencyRecords):
    """KeyStore + IdempotencyStore (+ LedgerStore, see serve/settlement/postgres_ledger.py): the
    shared stores' SQL on pooled connections; here only the PostgreSQL parts."""

    for_update = " FOR UPDATE"

    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        pool_min: int = POOL_CONNECTIONS_MIN,
        pool_max: int = POOL_CONNECTIONS_MAX,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        assert _SCHEMA_NAME.fullmatch(schema), schema
        assert 0 < pool_min <= pool_max
        self.url = url
        self.schema = schema
        self.breaker = breaker or CircuitBreaker(BREAKER_NAME)
        self._create_schema()
        self.pool = ConnectionPool(
            url,
            min_size=pool_min,
            max_size=pool_max,
            kwargs={"autocommit": True, "options": f"-c search_path={schema}"},
            timeout=POOL_WAIT_TIMEOUT_S,
            open=True,
            name=f"aex-{schema}",
        )
        self.migrate()

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self.pool.close()

    def _create_schema(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
            connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )

    def drop_schema(self) -> None:
        """Drops the whole schema (tests only): closes the pool first."""
        assert self.schema != "public"
        self.close()
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
            )

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection, through the `postgres` breaker: fails fast while it is open;
        a connection-level error counts as a failure and becomes `DependencyUnavailable`."""
        breaker = self.breaker
        if not breaker.allow():
            raise DependencyUnavailable(BREAKER_NAME, breaker.retry_after_s())
        probing = breaker.state is BreakerState.HALF_OPEN  # only the probe gets through
        timeout = SUSPECT_WAIT_TIMEOUT_S if breaker.suspect else POOL_WAIT_TIMEOUT_S
        outage = False
        try:
            if probing:
                self._revive_pool()
            with self.pool.connection(timeout=timeout) as connection:
                yield connection
        except psycopg.Error as error:
            if not is_outage(error):
                raise
            outage = True
            breaker.failure()
            raise DependencyUnavailable(BREAKER_NAME, breaker.retry_after_s()) from error
        finally:
            if not outage:
                breaker.success()  # PostgreSQL answered (a refused statement is an answer)

    def _revive_pool(self) -> None:
        """The probe: PostgreSQL answers a connection of its own, then the pool drops the
        connections the outage broke and opens new ones at once (its own reconnection backs
        off, and a broken idle connection would fail the next request)."""
        with psycopg.connect(self.url, autocommit=True, connect_timeout=2) as probe:
            probe.execute("SELECT 1")
        self.pool.check()

    @contextmanager
    def read(self) -> Iterator[psycopg.Connection[Any]]:
        with self.connection() as connection:
            yield connection

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """BEGIN ... COMMIT on one pooled connection; any exception rolls everything back."""
        with self.connection() as connection, connection.transaction():
            yield connection

    def migrate(self) -> int:
        with self.transaction() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            version = schema_version_in(PgSql(tx))
            for number, script in PG_MIGRATIONS:
                if number <= version:
                    continue
                for statement in script.split(";"):
                    if statement.strip():
                        tx.execute(statement.encode())
                tx.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
                version = number
        return version

    def schema_version(self) -> int:
        with self._read() as connection:
            return schema_version_in(connection)

    # -- the shared stores' hooks (serve/stores/sql.py) --------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Sql]:
        with self.read() as connection:
            yield PgSql(connection)

    @contextmanager
    def _write(self) -> Iterator[Sql]:
        with self.transaction() as connection:
            yield PgSql(connection)
