"""aex/core/json_values.py: free-form JSON is bounded in nodes, depth and bytes, iteratively."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from aex.core import limits
from aex.core.json_values import JsonProblem, JsonSize, measure_json


def test_size_is_the_compact_utf8_encoding() -> None:
    assert measure_json({"language": "Go", "scope": "security"}) == JsonSize(
        encoded_bytes=len(b'{"language":"Go","scope":"security"}'), nodes=3
    )
    assert measure_json("é") == JsonSize(encoded_bytes=4, nodes=1)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"x": b"bytes"}, JsonProblem.NOT_JSON),
        ({"x": {1, 2}}, JsonProblem.NOT_JSON),
        ({"x": math.nan}, JsonProblem.NOT_JSON),
        ({"x": Decimal("Infinity")}, JsonProblem.NOT_JSON),
        ({1: "x"}, JsonProblem.NOT_JSON),
        ([0] * limits.json_nodes_max, JsonProblem.TOO_MANY_NODES),
    ],
)
def test_non_json_or_unbounded_values_are_named(value: object, problem: JsonProblem) -> None:
    assert measure_json(value) is problem


def test_depth_is_limited() -> None:
    value: object = "leaf"
    for _ in range(limits.json_depth_max - 1):
        value = [value]
    assert isinstance(measure_json(value), JsonSize)
    assert measure_json([value]) is JsonProblem.TOO_DEEP


def test_decimals_are_json_numbers_unless_refused() -> None:
    assert isinstance(measure_json({"x": Decimal("0.8")}), JsonSize)
    assert measure_json({"x": Decimal("0.8")}, allow_decimal=False) is JsonProblem.NOT_JSON
