# Rule: how a duration literal ("2h", "90m", "1h30m", "2d") is read and written is decided here
# and only here.
#
# Theory of operation: the spec's bids carry `estimated_duration: "2h"` and
# `sla: { max_turnaround: "4h" }`. A duration is one or more `<digits><unit>` groups with units
# from {d, h, m, s}, each unit at most once and in that order (largest first), with no sign,
# spaces, fractions, exponents or upper case: what a person writes, read exactly one way. The
# value is integer milliseconds; the total must be positive ("0h" is refused: a zero turnaround
# promises nothing) and at most `limits.duration_ms_max`. `format_duration` writes the canonical
# form (largest units first, zero groups omitted), so parse(format(ms)) == ms for every whole
# number of seconds in range, and format(parse(s)) is the canonical spelling of s.
from __future__ import annotations

import re
from typing import Final

from aex.core import limits
from aex.core.reasons import DurationRejectReason, Rejected

__all__ = ["DURATION_UNITS_MS", "format_duration", "parse_duration"]

# Unit -> milliseconds, largest first: the order a literal must use.
DURATION_UNITS_MS: Final[dict[str, int]] = {
    "d": 24 * 3600 * 1000,
    "h": 3600 * 1000,
    "m": 60 * 1000,
    "s": 1000,
}
# Digits are "0" or start with 1-9 (no "01h"); each group optional, at least one required.
_DURATION_LITERAL: Final = re.compile(
    r"(?:(?P<d>0|[1-9][0-9]*)d)?(?:(?P<h>0|[1-9][0-9]*)h)?"
    r"(?:(?P<m>0|[1-9][0-9]*)m)?(?:(?P<s>0|[1-9][0-9]*)s)?"
)
assert list(DURATION_UNITS_MS.values()) == sorted(DURATION_UNITS_MS.values(), reverse=True)


def parse_duration(
    value: object, *, field: str = "duration", duration_ms_max: int = limits.duration_ms_max
) -> int | Rejected[DurationRejectReason]:
    """Reads a duration literal such as "1h30m" into positive integer milliseconds.

    Args:
        value: the decoded JSON value; only a str can be a duration.
        field: the dotted name reported in a rejection ("sla.max_turnaround").
        duration_ms_max: the largest duration accepted, in milliseconds.

    Returns:
        The duration in milliseconds, or a Rejected naming `field`, in precedence order:
        DURATION_TYPE_INVALID (not a str); DURATION_SYNTAX_INVALID ("", "2", "2 h", "-1h",
        "1.5h", "30m1h", longer than limits.duration_literal_chars_max); DURATION_NOT_POSITIVE
        ("0h", "0m0s"); DURATION_OUT_OF_RANGE (more than duration_ms_max).
    """
    assert 0 < duration_ms_max <= limits.duration_ms_max
    if not isinstance(value, str):
        return Rejected(DurationRejectReason.DURATION_TYPE_INVALID, field, "expected a string")
    match = _DURATION_LITERAL.fullmatch(value)
    if len(value) > limits.duration_literal_chars_max or match is None or value == "":
        return Rejected(
            DurationRejectReason.DURATION_SYNTAX_INVALID,
            field,
            f"{value[:40]!r} is not like '2h', '90m', '1h30m' or '2d'",
        )
    duration_ms = sum(
        int(digits) * DURATION_UNITS_MS[unit]
        for unit, digits in match.groupdict().items()
        if digits is not None
    )
    if duration_ms <= 0:
        return Rejected(DurationRejectReason.DURATION_NOT_POSITIVE, field, "must be positive")
    if duration_ms > duration_ms_max:
        return Rejected(
            DurationRejectReason.DURATION_OUT_OF_RANGE,
            field,
            f"at most {format_duration(duration_ms_max)}",
        )
    return duration_ms


def format_duration(duration_ms: int) -> str:
    """Writes positive whole-second milliseconds canonically: 5_400_000 -> "1h30m"."""
    assert type(duration_ms) is int
    assert duration_ms > 0
    assert duration_ms % DURATION_UNITS_MS["s"] == 0, "durations are whole seconds"
    groups = []
    remaining_ms = duration_ms
    for unit, unit_ms in DURATION_UNITS_MS.items():
        count, remaining_ms = divmod(remaining_ms, unit_ms)
        if count:
            groups.append(f"{count}{unit}")
    assert remaining_ms == 0
    return "".join(groups)
