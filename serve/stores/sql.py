"""One SQL text for both backends: a thin connection adapter and the base of the shared stores.

The identity, registry and idempotency stores (serve/stores/identity_store.py,
registry_store.py, idempotency_store.py) are written once, in the SQL that SQLite and
PostgreSQL share, with `?` placeholders, as the market's is (serve/stores/market_db.py). They
reach a database only through `SqlStore`'s three hooks, which each backend class fills:

- `_read()`: a connection for reads outside a transaction (a SQLite WAL snapshot; a pooled
  PostgreSQL connection through the circuit breaker);
- `_write()`: one write transaction (`BEGIN IMMEDIATE`; READ COMMITTED on a pooled
  connection);
- `_epoch_moved()`: a write bumped `credentials_epoch` (SQLite publishes its memory map after
  the COMMIT; PostgreSQL's workers read the table).

and `for_update`, appended to a SELECT that guards a count-then-insert: a row lock on
PostgreSQL, nothing on SQLite (writers are serialised). Rows are read by column name:
`sqlite3.Row` on SQLite, `dict_row` on PostgreSQL, set per cursor (the connections are shared
with the market's and the ledger's code, which keep their own row shapes).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from functools import lru_cache
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg.rows import dict_row

from serve.stores.base import Page
from serve.stores.pages import Keyset, keyset_page

R = TypeVar("R")

Row = Mapping[str, Any]


class Rows(Protocol):
    """A cursor whose rows are read by column name."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Sql(Protocol):
    """A connection as the shared stores see it: `?` placeholders, rows by column name."""

    def execute(self, statement: str, parameters: Sequence[Any] = ()) -> Rows: ...

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None: ...


class SqliteSql:
    """A sqlite3 connection whose cursors return `sqlite3.Row` (read by name)."""

    __slots__ = ("raw",)

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def execute(self, statement: str, parameters: Sequence[Any] = ()) -> Rows:
        cursor = self.raw.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute(statement, parameters)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        self.raw.executemany(statement, rows)


@lru_cache(maxsize=256)
def pg_sql(statement: str) -> bytes:
    """`?` placeholders as psycopg's `%s`: the shared SQL has no `%` and no `?` in literals."""
    assert "%" not in statement, statement
    return statement.replace("?", "%s").encode()


class PgSql:
    """A psycopg connection that takes `?` placeholders and returns rows as dicts."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, statement: str, parameters: Sequence[Any] = ()) -> Rows:
        cursor = self.raw.cursor(row_factory=dict_row)
        return cursor.execute(pg_sql(statement), parameters)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.raw.cursor() as cursor:
            cursor.executemany(pg_sql(statement), rows)


class SqlStore:
    """What the shared stores need of a backend (see the module docstring)."""

    for_update: str = ""

    def _read(self) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def _epoch_moved(self) -> None:
        """Called inside the write transaction that bumped `credentials_epoch`."""

    def _one(self, statement: str, parameters: Sequence[Any] = ()) -> Any:
        with self._read() as connection:
            return connection.execute(statement, parameters).fetchone()

    def _all(self, statement: str, parameters: Sequence[Any] = ()) -> list[Any]:
        with self._read() as connection:
            return connection.execute(statement, parameters).fetchall()

    def _page(
        self,
        keyset: Keyset,
        select: str,
        where: tuple[str, Sequence[Any]],
        record: Callable[[Any], R],
        *,
        limit: int,
        starting_after: str | None,
    ) -> Page[R] | None:
        """One keyset page of `select WHERE where` as records (serve/stores/pages.py); None
        when `starting_after` is not one of the rows `where` lists."""
        with self._read() as connection:
            found = keyset_page(
                connection,
                keyset,
                select,
                where[0],
                where[1],
                starting_after=starting_after,
                limit=limit,
            )
        if found is None:
            return None
        rows, more = found
        return Page(tuple(record(row) for row in rows), more)


def schema_version_in(connection: Sql) -> int:
    """The last migration applied (0 before the first)."""
    row = connection.execute("SELECT coalesce(max(version), 0) AS version FROM schema_version")
    return int(row.fetchone()["version"])
