"""Rows as typed records by column name (serve/stores/rows.py): the SELECT list comes from the
record's fields, a query answering another number of columns fails loudly, and no module of
serve/ reads a database row by position."""

from __future__ import annotations

import ast
import re
import sqlite3
from pathlib import Path
from typing import NamedTuple

import pytest

from serve.stores.rows import many, one, scalar, scalars, select_list

SERVE = Path(__file__).resolve().parents[3] / "serve"
# The names a driver gives a database row; `row[3]` on one of them is a positional read.
ROW_NAME = re.compile(r"^(row|r|found|record|prior_row|cursor_row|\w+_row)$")


class _Pair(NamedTuple):
    name: str
    total_minor: int


def test_select_list_names_the_fields_in_order_with_table_and_expressions() -> None:
    assert select_list(_Pair) == "name, total_minor"
    assert select_list(_Pair, table="t") == "t.name, t.total_minor"
    assert select_list(_Pair, total_minor="sum(x)") == "name, sum(x) AS total_minor"


def test_select_list_refuses_an_expression_for_no_field() -> None:
    with pytest.raises(AssertionError, match="no field"):
        select_list(_Pair, totl_minor="sum(x)")


def test_rows_are_read_by_name_from_a_real_query() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (name TEXT, x INTEGER)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [("a", 1), ("a", 2), ("b", 5)])
    query = f"SELECT {select_list(_Pair, total_minor='sum(x)')} FROM t GROUP BY name ORDER BY name"
    assert many(_Pair, db.execute(query)) == [_Pair("a", 3), _Pair("b", 5)]
    first = one(_Pair, db.execute(query))
    assert first is not None
    assert first.total_minor == 3
    assert one(_Pair, db.execute(query + " LIMIT 0")) is None
    assert scalar(db.execute("SELECT count(*) FROM t")) == 3
    assert scalar(db.execute("SELECT x FROM t WHERE name = 'z'")) is None
    assert scalars(db.execute("SELECT x FROM t ORDER BY x")) == [1, 2, 5]


def test_a_query_answering_other_columns_than_the_record_fails() -> None:
    db = sqlite3.connect(":memory:")
    with pytest.raises(AssertionError, match="reads 2 columns"):
        one(_Pair, db.execute("SELECT 1, 2, 3"))
    with pytest.raises(AssertionError, match="scalar"):
        scalar(db.execute("SELECT 1, 2"))


def _fetches(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"fetchone", "fetchall"}
    )


def _positional_reads(source: str) -> list[int]:
    tree = ast.parse(source)
    # Names bound to a fetched row anywhere in the module, beside the usual row names.
    fetched = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and _fetches(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Subscript):
            continue
        index = node.slice
        if not (isinstance(index, ast.Constant) and type(index.value) is int):
            continue
        target = node.value
        named = isinstance(target, ast.Name) and (
            ROW_NAME.match(target.id) is not None or target.id in fetched
        )
        if named or _fetches(target):
            lines.append(node.lineno)
    return lines


def test_the_check_finds_positional_reads() -> None:
    source = (
        "a = row[9]\nb = tx.execute(q).fetchone()[0]\nc = prior_row[0]\nd = row.price_minor\n"
        "count = tx.execute(q).fetchone()\ne = count[0]\nf = [1, 2][0]\n"
    )
    assert _positional_reads(source) == [1, 2, 3, 6]


def test_no_module_of_serve_reads_a_row_by_position() -> None:
    found = {
        str(path.relative_to(SERVE)): lines
        for path in sorted(SERVE.rglob("*.py"))
        if path.name != "rows.py" and (lines := _positional_reads(path.read_text()))
    }
    assert found == {}
