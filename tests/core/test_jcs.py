"""canonical_json is RFC 8785: byte-equal to the rfc8785 reference on every JSON value."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from aex.core.jcs import CanonicalizationError, canonical_json

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) - 5, max_value=2**53 + 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
keys = st.text(max_size=6) | st.sampled_from(["a", "b", "\u00e9", "\U0001f600", "\ue000", "A"])
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)


def reference(value: Any) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(value)
    except CanonicalizationError as error:
        return type(error)


def ours(value: Any) -> bytes | type[Exception]:
    try:
        return canonical_json(value)
    except CanonicalizationError as error:
        return type(error)


@settings(max_examples=200, deadline=None)
@given(documents)
def test_canonical_json_equals_the_rfc8785_reference(value: Any) -> None:
    assert ours(value) == reference(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": [True, None, "x"]}, b'{"a":[true,null,"x"],"b":1}'),
        ({"s": '\u2028\x7f\x01\n"\\'}, '{"s":"\u2028\x7f\\u0001\\n\\"\\\\"}'.encode()),
        ({"\ue000": 1, "\U0001f600": 2}, '{"\U0001f600":2,"\ue000":1}'.encode()),  # UTF-16 order
        ({"n": 2**53 - 1}, b'{"n":9007199254740991}'),
    ],
)
def test_canonical_json_examples(value: Any, expected: bytes) -> None:
    assert canonical_json(value) == expected


def test_integers_beyond_2_pow_53_have_no_canonical_form() -> None:
    with pytest.raises(CanonicalizationError):
        canonical_json({"serial": 2**53})
