"""serve/stores/pages.py: one keyset page implementation over every row shape the drivers give
(plain tuples on the market's connections, `sqlite3.Row` and dict rows on the stores')."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from serve.gateway.problems import ProblemError, listed
from serve.stores.pages import Keyset, keyset_page, page_answer

_KEYSET = Keyset("items", "at_ms", "item_id")
_SELECT = "SELECT item_id, owner, at_ms FROM items"


class _DictRows:
    # A connection whose rows are dicts, as the stores' PostgreSQL cursors answer (dict_row).
    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def execute(self, statement: str, parameters: Sequence[Any] = ()) -> Any:
        cursor = self.raw.cursor()
        cursor.row_factory = lambda c, row: {
            d[0]: v for d, v in zip(c.description, row, strict=True)
        }
        return cursor.execute(statement, parameters)


@pytest.fixture(params=["tuple", "sqlite3.Row", "dict"])
def connection(request: pytest.FixtureRequest) -> Iterator[Any]:
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE items (item_id TEXT PRIMARY KEY, owner TEXT, at_ms INTEGER)")
    raw.executemany(
        "INSERT INTO items VALUES (?, ?, ?)",
        [("a", "me", 1), ("b", "me", 2), ("c", "me", 2), ("d", "you", 3), ("e", "me", 4)],
    )
    if request.param == "sqlite3.Row":
        raw.row_factory = sqlite3.Row
    yield _DictRows(raw) if request.param == "dict" else raw
    raw.close()


def _ids(rows: list[Any]) -> list[str]:
    return [row["item_id"] if isinstance(row, dict) else row[0] for row in rows]


def test_a_walk_reads_every_listed_row_once_newest_first(connection: Any) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        found = keyset_page(
            connection, _KEYSET, _SELECT, "owner = ?", ["me"], starting_after=cursor, limit=2
        )
        assert found is not None
        rows, more = found
        seen += _ids(rows)
        if not more:
            break
        cursor = seen[-1]
    assert seen == ["e", "c", "b", "a"]  # ties on the time ordered by id, descending


def test_a_cursor_naming_another_owners_row_is_none_and_then_422(connection: Any) -> None:
    found = keyset_page(
        connection, _KEYSET, _SELECT, "owner = ?", ["me"], starting_after="d", limit=2
    )
    assert found is None
    with pytest.raises(ProblemError) as refused:
        listed(found, "unknown_item")
    assert refused.value.status == 422


def test_narrow_filters_the_page_but_not_the_cursor(connection: Any) -> None:
    found = keyset_page(
        connection,
        _KEYSET,
        _SELECT,
        "owner = ?",
        ["me"],
        starting_after="e",
        limit=5,
        narrow=(" AND at_ms < ?", [2]),
    )
    assert found is not None
    assert _ids(found[0]) == ["a"]


def test_the_answer_carries_the_last_id_while_more_follow() -> None:
    rows: list[dict[str, Any]] = [{"item_id": "e"}, {"item_id": "c"}]
    assert page_answer(rows, True, "item_id")["next_cursor"] == "c"
    assert page_answer(rows, False, "item_id") == {
        "data": rows,
        "has_more": False,
        "next_cursor": None,
    }
