# Rule: what the core accepts as a free-form JSON value, and how its size is measured, is decided
# here and only here.
#
# Theory of operation: work requirements, a bid's sample work, completion results and event
# payloads are client- or driver-supplied JSON that the core stores but does not interpret. They
# must still be bounded (STYLE.md 8): `measure_json` walks a decoded value iteratively (no
# recursion, so no stack limit), refuses anything that is not a JSON type (bytes, sets, NaN,
# non-string keys), stops after `limits.json_nodes_max` nodes or `limits.json_depth_max` levels,
# and only then encodes it compactly to count its UTF-8 bytes. Drivers decode JSON numbers with a
# Decimal hook, so a finite `Decimal` is a JSON number here too.
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from aex.core import limits

__all__ = ["JsonProblem", "JsonSize", "measure_json"]


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
        return [] if allow_decimal and item.is_finite() else None
    if isinstance(item, list | tuple):
        return list(item)
    if isinstance(item, Mapping):
        if not all(isinstance(key, str) for key in item):
            return None
        return list(item.values())
    return None
