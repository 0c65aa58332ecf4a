"""aex/core/durations.py: duration literals are read one way, exactly, and written canonically."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aex.core import limits
from aex.core.durations import format_duration, parse_duration
from aex.core.reasons import DurationRejectReason, Rejected

HOUR_MS = 3_600_000


@pytest.mark.parametrize(
    ("literal", "duration_ms"),
    [
        ("2h", 2 * HOUR_MS),  # the spec's estimated_duration
        ("4h", 4 * HOUR_MS),  # the spec's sla.max_turnaround
        ("90m", 90 * 60_000),
        ("30s", 30_000),
        ("1h30m", 90 * 60_000),
        ("2d", 48 * HOUR_MS),
        ("1d2h3m4s", ((24 + 2) * 60 + 3) * 60_000 + 4_000),
        ("1h0m", HOUR_MS),
        ("365d", limits.duration_ms_max),
    ],
)
def test_duration_literal_reads_as_milliseconds(literal: str, duration_ms: int) -> None:
    assert parse_duration(literal) == duration_ms


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", DurationRejectReason.DURATION_SYNTAX_INVALID),
        ("2", DurationRejectReason.DURATION_SYNTAX_INVALID),
        ("2 h", DurationRejectReason.DURATION_SYNTAX_INVALID),
        (" 2h", DurationRejectReason.DURATION_SYNTAX_INVALID),
        ("-1h", DurationRejectReason.DURATION_SYNTAX_INVALID),
        ("+1h", DurationRejectReason.DURATION_SYNTAX_INVALID),
        ("1.5h", DurationRejectReason.DURATION_SYNTAX_INVALID),
        ("2H", DurationRejectReason.DURATION_SYNTAX_INVALID),
        ("30m1h", DurationRejectReason.DURATION_SYNTAX_INVALID),
        ("1h1h", DurationRejectReason.DURATION_SYNTAX_INVALID),
        ("01h", DurationRejectReason.DURATION_SYNTAX_INVALID),
        ("1e3s", DurationRejectReason.DURATION_SYNTAX_INVALID),
        ("2w", DurationRejectReason.DURATION_SYNTAX_INVALID),
        ("1" * 40 + "s", DurationRejectReason.DURATION_SYNTAX_INVALID),
        ("0h", DurationRejectReason.DURATION_NOT_POSITIVE),
        ("0d0h0m0s", DurationRejectReason.DURATION_NOT_POSITIVE),
        ("366d", DurationRejectReason.DURATION_OUT_OF_RANGE),
        ("99999999999999999999h", DurationRejectReason.DURATION_OUT_OF_RANGE),
        (7200, DurationRejectReason.DURATION_TYPE_INVALID),
        (None, DurationRejectReason.DURATION_TYPE_INVALID),
        (Decimal("2"), DurationRejectReason.DURATION_TYPE_INVALID),
    ],
)
def test_malformed_duration_is_rejected_naming_the_field(
    value: object, reason: DurationRejectReason
) -> None:
    result = parse_duration(value, field="sla.max_turnaround")
    assert isinstance(result, Rejected)
    assert result.reason is reason
    assert result.field == "sla.max_turnaround"
    assert result.http_status == 422


def test_a_tighter_maximum_is_honoured() -> None:
    result = parse_duration("5h", duration_ms_max=4 * HOUR_MS)
    assert isinstance(result, Rejected)
    assert result.reason is DurationRejectReason.DURATION_OUT_OF_RANGE


@pytest.mark.parametrize(
    ("duration_ms", "literal"),
    [(90 * 60_000, "1h30m"), (48 * HOUR_MS, "2d"), (1_000, "1s"), (HOUR_MS + 1_000, "1h1s")],
)
def test_format_writes_the_canonical_literal(duration_ms: int, literal: str) -> None:
    assert format_duration(duration_ms) == literal


@given(st.integers(1, limits.duration_ms_max // 1000))
def test_parse_after_format_is_the_identity(seconds: int) -> None:
    assert parse_duration(format_duration(seconds * 1000)) == seconds * 1000


@given(
    st.tuples(*(st.one_of(st.none(), st.integers(0, 400)) for _ in range(4))).filter(
        lambda groups: any(g is not None for g in groups)
    )
)
def test_format_after_parse_is_canonical_and_equal(groups: tuple[int | None, ...]) -> None:
    literal = "".join(f"{n}{u}" for n, u in zip(groups, "dhms", strict=True) if n is not None)
    parsed = parse_duration(literal)
    if isinstance(parsed, Rejected):
        assert parsed.reason in {
            DurationRejectReason.DURATION_NOT_POSITIVE,
            DurationRejectReason.DURATION_OUT_OF_RANGE,
        }
        return
    canonical = format_duration(parsed)
    assert parse_duration(canonical) == parsed
    assert format_duration(parsed) == canonical  # the canonical spelling is a fixed point
    # No zero groups and no leading zeros: "1h", never "1h0m".
    assert all(not digits.startswith("0") for digits in re.findall(r"[0-9]+", canonical))


@given(st.text(max_size=12))
def test_any_text_parses_to_positive_milliseconds_or_a_rejection(text: str) -> None:
    result = parse_duration(text)
    if not isinstance(result, Rejected):
        assert 0 < result <= limits.duration_ms_max
        assert result % 1000 == 0
