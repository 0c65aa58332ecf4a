# Rule: what the core accepts as a free-form JSON value, and how its size is measured, is decided
# here and only here.
#
# Theory of operation: work requirements, a bid's sample work, completion results and event
# payloads are client- or driver-supplied JSON that the core stores but does not interpret. They
# must still be bounded (STYLE.md 8): `measure_json` walks a decoded value iteratively (no
# recursion, so no stack limit), refuses anything that is not a JSON type (bytes, sets, NaN,
# non-string keys), stops after `limits.json_nodes_max` nodes or `limits.json_depth_max` levels,
# and only then encodes it compactly to count its UTF-8 bytes. Drivers decode JSON numbers with a
# Decimal hook, so a `Decimal` is a JSON number here too, if it is finite as an IEEE 754 double:
# RFC 8259 section 6 warns that numbers beyond binary64 do not interoperate, and `1e999` read
# back by any JSON parser (ours included, for events) is infinity, which JSON cannot carry.
#
# `json_text_too_deep` bounds a whole request body's nesting: it strips the strings (which may
# hold brackets), keeps the brackets and removes the innermost empty pairs once per level, so it
# makes at most `depth_max` linear passes (bytes primitives, no per-character Python loop).
from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Final

from aex.core import limits

__all__ = ["JsonProblem", "JsonSize", "json_text_too_deep", "measure_json"]


class JsonProblem(Enum):
    """Why a value is not an acceptable free-form JSON value."""

    NOT_JSON = "not_json"
    TOO_DEEP = "too_deep"
    TOO_MANY_NODES = "too_many_nodes"


@dataclass(frozen=True, slots=True)
class JsonSize:
    """A JSON value's size: its compact UTF-8 encoding in bytes and the nodes walked."""

    encoded_bytes: int
    nodes: int


def measure_json(value: object, *, allow_decimal: bool = True) -> JsonSize | JsonProblem:
    """Checks that `value` is a bounded JSON value and measures its compact encoding.

    Args:
        value: a decoded JSON value (dict with str keys, list, str, int, finite float or
            Decimal, bool, None).
        allow_decimal: False for values the core itself emits (event payloads), which carry
            money as decimal strings and so contain no Decimal.

    Returns:
        The JsonSize, or the JsonProblem found first (NOT_JSON, TOO_DEEP, TOO_MANY_NODES).
    """
    nodes = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        if nodes >= limits.json_nodes_max:
            return JsonProblem.TOO_MANY_NODES
        item, depth = stack.pop()
        nodes += 1
        if depth > limits.json_depth_max:
            return JsonProblem.TOO_DEEP
        children = _children(item, allow_decimal=allow_decimal)
        if children is None:
            return JsonProblem.NOT_JSON
        stack.extend((child, depth + 1) for child in children)
    encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    assert nodes <= limits.json_nodes_max
    return JsonSize(encoded_bytes=len(encoded.encode()), nodes=nodes)


# The children of a JSON node (empty for scalars), or None when the node is not JSON.
def _children(item: object, *, allow_decimal: bool) -> list[object] | None:
    if item is None or isinstance(item, bool | int | str):
        return []
    if isinstance(item, float):
        return [] if math.isfinite(item) else None
    if isinstance(item, Decimal):
        return [] if allow_decimal and item.is_finite() and abs(item) <= _DOUBLE_MAX else None
    if isinstance(item, list | tuple):
        return list(item)
    if isinstance(item, Mapping):
        if not all(isinstance(key, str) for key in item):
            return None
        return list(item.values())
    return None


_DOUBLE_MAX: Final = Decimal(float.fromhex("0x1.fffffffffffffp+1023"))  # sys.float_info.max
# A JSON string, escapes included. An unterminated one (or one ending in a lone backslash) runs
# to the end of the text: every quote starts a match, so the scan never restarts (linear).
_STRING_PATTERN: Final = rb'"(?:[^"\\]++|\\.|\\\Z)*+(?:"|\Z)'
_TOKEN: Final = re.compile(_STRING_PATTERN + rb"|[\[\]{},:]", re.DOTALL)
# Brackets of either kind become "[]" (for depth, the kind does not matter); all else but quotes
# is deleted.
_BRACKETS_ONLY: Final = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE: Final = bytes(set(range(256)) - set(b'[]{}"'))


def json_text_too_deep(text: bytes, *, depth_max: int) -> str | None:
    """Whether a JSON text nests arrays and objects more than `depth_max` levels deep.

    The text is one the decoder accepted (or began to: a decoder that gave up on its nesting
    has read a well-formed prefix). Every step is a bytes primitive, linear in the text:
    escaped backslashes and quotes are dropped, so every remaining quote delimits a string;
    what lies between quote pairs (string content) is dropped; the brackets left are the
    structure, and each pass removes every innermost "[]" pair, one level per pass.

    Args:
        text: the raw body (at most limits.request_body_bytes_max bytes).
        depth_max: limits.request_json_depth_max for request bodies.

    Returns:
        None when the nesting is within `depth_max`, else the top-level member that nests
        deeper (its key), or "body" when the document itself is the deep value.
    """
    assert len(text) <= limits.request_body_bytes_max
    assert 0 < depth_max < 1_000
    unescaped = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = b"".join(unescaped.translate(None, _NOT_STRUCTURE).split(b'"')[::2])
    brackets = structure.translate(_BRACKETS_ONLY)
    for _ in range(depth_max):
        if not brackets:
            return None
        reduced = brackets.replace(b"[]", b"")  # one level: every innermost pair at once
        if len(reduced) == len(brackets):
            return None  # unbalanced: malformed JSON, which the decoder refuses
        brackets = reduced
    return _deep_member(text, depth_max=depth_max) if brackets else None


# The key of the top-level member in which the nesting first exceeds depth_max (a scan that
# stops there: the text before that point is as deep as the decoder has already read).
def _deep_member(text: bytes, *, depth_max: int) -> str:
    depth, key, top_is_object, expect_key, last_string = 0, "body", False, False, b""
    for token in _TOKEN.finditer(text):
        found = token.group()
        if found in (b"[", b"{"):
            depth += 1
            if depth > depth_max:
                return key
            if depth == 1:
                top_is_object = expect_key = found == b"{"
        elif found in (b"]", b"}"):
            depth -= 1
        elif depth == 1 and found == b",":
            expect_key = top_is_object
        elif depth == 1 and found == b":" and expect_key:
            key, expect_key = _key_text(last_string), False
        elif found[:1] == b'"':
            last_string = found
    return key


def _key_text(literal: bytes) -> str:
    try:
        decoded = json.loads(literal)
    except ValueError:
        return "body"
    return decoded if isinstance(decoded, str) and decoded else "body"
