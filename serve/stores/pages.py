"""Lists as keyset pages, newest first: the one implementation every list uses.

A page is `limit` rows of a SELECT in (time, id) order, newest first, after the row its cursor
(`starting_after`, a row id) names, and whether more follow. The cursor must be one of the rows
the list's `where` lists: `keyset_page` answers None otherwise, and the caller answers the one
422 naming `starting_after` (serve/gateway/problems.py `listed`), alike for another's id and an
id that does not exist, so a cursor reveals nothing of another's rows. `page_answer` is the
wire shape `{data, has_more, next_cursor}` (docs/market-api.md "Lists").

Used over both the stores' connections (serve/stores/sql.py: `sqlite3.Row` or dict rows) and
the market's (plain tuples): the cursor's time is read as a one-column query (`scalar`), and
the page's rows are handed back as the driver fetched them, for the caller's row reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from serve.stores.rows import scalar

# The most rows one page reads: the largest page any list asks (GET /v1/work/open reads up to
# one page and one row ahead per batch, serve/market/usecases.py), with room to spare.
KEYSET_PAGE_ROWS_MAX = 1_000


class _Connection(Protocol):
    def execute(self, statement: str, parameters: Sequence[Any] = (), /) -> Any: ...


class Keyset(NamedTuple):
    """How a list is paged newest first: its table (a join, aliases included), and its time
    and id columns (the order)."""

    table: str
    at: str
    id: str


def keyset_page(
    connection: _Connection,
    keyset: Keyset,
    select: str,
    where: str,
    parameters: Sequence[Any],
    *,
    starting_after: str | None,
    limit: int,
    narrow: tuple[str, Sequence[Any]] = ("", ()),
) -> tuple[list[Any], bool] | None:
    """One page of `select WHERE where`, newest first (time, then id), after the
    `starting_after` row, and whether more follow; None when `starting_after` names none of the
    rows `where` lists. `narrow` (" AND ..." and its values) filters the page but not the
    cursor, so a walk goes on when its last row no longer passes (a bid window closed
    meanwhile). `where` and `narrow` hold fixed texts only; every value is in the parameters."""
    assert 1 <= limit <= KEYSET_PAGE_ROWS_MAX, limit
    parameters = list(parameters)
    if starting_after is not None:
        at = scalar(
            connection.execute(
                f"SELECT {keyset.at} AS at FROM {keyset.table}"  # noqa: S608
                f" WHERE {keyset.id} = ? AND {where}",
                (starting_after, *parameters),
            )
        )
        if at is None:  # the time columns are NOT NULL: no such row listed
            return None
        where += f" AND ({keyset.at} < ? OR ({keyset.at} = ? AND {keyset.id} < ?))"
        parameters = [*parameters, at, at, starting_after]
    where, parameters = where + narrow[0], [*parameters, *narrow[1]]
    order = f" ORDER BY {keyset.at} DESC, {keyset.id} DESC LIMIT ?"
    found = connection.execute(f"{select} WHERE {where}{order}", (*parameters, limit + 1))
    rows = list(found.fetchall())
    assert len(rows) <= limit + 1
    return rows[:limit], len(rows) > limit


def page_answer(rows: list[dict[str, Any]], more: bool, id_key: str) -> dict[str, Any]:
    """A list's answer: the rows, whether more follow, and the cursor of the next page (the
    last row's id) while they do."""
    if more:
        assert rows, "a page with more after it is not empty"
    return {"data": rows, "has_more": more, "next_cursor": rows[-1][id_key] if more else None}
