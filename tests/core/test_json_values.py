"""aex/core/json_values.py: free-form JSON is bounded in nodes, depth and bytes, iteratively."""

from __future__ import annotations

import json
import math
import time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aex.core import limits
from aex.core.json_values import JsonProblem, JsonSize, json_text_too_deep, measure_json


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


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "1e309", "2e308"])
def test_a_decimal_beyond_ieee_double_is_not_json(literal: str) -> None:
    # Read back by any JSON parser (ours, for events) it would be infinity (issue 11, item 3).
    assert measure_json({"coverage": Decimal(literal)}) is JsonProblem.NOT_JSON


@pytest.mark.parametrize("literal", ["1e308", "-1.7976931348623157e308", "1e-999", "0.1"])
def test_a_decimal_within_ieee_double_is_json(literal: str) -> None:
    assert isinstance(measure_json({"coverage": Decimal(literal)}), JsonSize)


# -- json_text_too_deep ------------------------------------------------------------------------


def _depth(value: object) -> int:
    # The reference: container nesting of a decoded value (scalars add none).
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\:,ab', max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\:,ab', max_size=4), children, max_size=3)
    ),
    max_leaves=30,
)


@given(value=JSON, depth_max=st.integers(1, 8))
def test_text_depth_agrees_with_the_decoded_depth(value: object, depth_max: int) -> None:
    text = json.dumps(value).encode()
    found = json_text_too_deep(text, depth_max=depth_max)
    assert (found is None) == (_depth(value) <= depth_max)


def test_the_deep_member_is_named() -> None:
    deep = "[" * 40 + "]" * 40
    text = '{"a": 1, "b\\"[": "[[[[", "requirements": {"x": ' + deep + "}}"
    assert json_text_too_deep(text.encode(), depth_max=32) == "requirements"
    assert json_text_too_deep(deep.encode(), depth_max=32) == "body"
    assert json_text_too_deep(b'{"a": [' + deep.encode() + b"]}", depth_max=32) == "a"


@pytest.mark.parametrize(
    "text",
    [
        b'"' + b'\\"' * 200_000,  # an unterminated string of escaped quotes
        b'"' + b'\\"' * 200_000 + b"\\",  # ... ending in a lone backslash
        b'["' * 200_000,
        b"[" * 400_000,  # unbalanced: the decoder's to refuse
    ],
)
def test_malformed_text_is_scanned_in_linear_time(text: bytes) -> None:
    started = time.perf_counter()
    json_text_too_deep(text, depth_max=limits.request_json_depth_max)
    assert time.perf_counter() - started < 2.0  # quadratic would be minutes
