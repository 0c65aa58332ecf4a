"""Rows read as typed records, by column name, on both backends.

A query's result shape is a `NamedTuple` whose fields are the columns it reads, in order; the
SELECT list is generated from those fields (`select_list`), so the names and their order live in
one place and a reader writes `row.price_minor`, never `row[6]`:

    class _ContractRow(NamedTuple):
        contract_id: str
        price_minor: int
        spent_minor: int

    _CONTRACT_SELECT = (
        f"SELECT {select_list(_ContractRow, table='c', spent_minor='coalesce(sum(x), 0)')}"
        " FROM contracts c"
    )
    row = one(_ContractRow, tx.execute(_CONTRACT_SELECT + " WHERE c.contract_id = ?", (cid,)))

SQLite and psycopg both answer plain tuples in SELECT-list order, so the records are built the
same way over either driver (serve/stores/market_db.py, serve/stores/sqlite.py, postgres.py).
`scalar` and `scalars` read a one-column row of any shape: a tuple, a `sqlite3.Row`, or the
dict rows of the stores' PostgreSQL cursors (serve/stores/sql.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

R = TypeVar("R")


def select_list(row: type[tuple[Any, ...]], *, table: str = "", **expressions: str) -> str:
    """The SELECT list reading `row`'s fields in order: `table.field` (or `field`) for a column,
    `expression AS field` for a field given as a keyword."""
    fields: tuple[str, ...] = row._fields  # type: ignore[attr-defined]
    unknown = set(expressions) - set(fields)
    assert not unknown, f"expressions for no field of {row.__name__}: {sorted(unknown)}"
    prefix = f"{table}." if table else ""
    return ", ".join(
        f"{expressions[field]} AS {field}" if field in expressions else f"{prefix}{field}"
        for field in fields
    )


def one(row: type[R], found: Any) -> R | None:
    """The first row of a cursor (or an already-fetched row) as a `row` record, or None."""
    values = found.fetchone() if hasattr(found, "fetchone") else found
    return None if values is None else _make(row, values)


def many(row: type[R], found: Any) -> list[R]:
    """Every row of a cursor (or an already-fetched sequence) as `row` records."""
    values = found.fetchall() if hasattr(found, "fetchall") else found
    return [_make(row, value) for value in values]


def _make(row: type[R], values: Sequence[Any]) -> R:
    fields: tuple[str, ...] = row._fields  # type: ignore[attr-defined]
    assert len(values) == len(fields), (
        f"{row.__name__} reads {len(fields)} columns, the query answered {len(values)}"
    )
    return row._make(values)  # type: ignore[attr-defined, no-any-return]


def scalar(found: Any) -> Any:
    """The one column of a one-column query's first row (None when there is no row)."""
    values = found.fetchone() if hasattr(found, "fetchone") else found
    return None if values is None else _only(values)


def scalars(found: Any) -> list[Any]:
    """The one column of every row of a one-column query."""
    values = found.fetchall() if hasattr(found, "fetchall") else found
    return [_only(value) for value in values]


def _only(values: Any) -> Any:
    # The one column of a row: a tuple or sqlite3.Row by index, a dict row by its one value.
    assert len(values) == 1, f"a scalar query answered {len(values)} columns"
    if isinstance(values, Mapping):
        return next(iter(values.values()))
    return values[0]
