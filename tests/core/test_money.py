"""aex/core/money.py: exact parsing, formatting and named rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aex.core import limits
from aex.core.money import (
    CURRENCY_EXPONENTS,
    Money,
    check_currency,
    div_floor,
    div_round_half_even,
    format_amount,
    parse_money,
)
from aex.core.reasons import MoneyRejectReason, Rejected


@pytest.mark.parametrize(
    ("value", "currency", "amount_minor"),
    [
        ("100.10", "USD", 10010),
        (Decimal("100.1"), "USD", 10010),
        ("100.1", "USD", 10010),
        (100, "USD", 10000),
        ("0", "EUR", 0),
        ("0.01", "GBP", 1),
        ("1234", "JPY", 1234),
        ("1.234", "KWD", 1234),
        ("-5.50", "USD", -550),
        ("1000000000000.00", "USD", 10**14),
    ],
)
def test_parse_money_is_exact(value: str, currency: str, amount_minor: int) -> None:
    assert parse_money(value, currency) == Money(amount_minor, currency)


@pytest.mark.parametrize(
    ("value", "currency", "reason", "field"),
    [
        ("0.001", "USD", MoneyRejectReason.AMOUNT_PRECISION_EXCEEDED, "amount"),
        ("1.5", "JPY", MoneyRejectReason.AMOUNT_PRECISION_EXCEEDED, "amount"),
        (100.1, "USD", MoneyRejectReason.AMOUNT_TYPE_INVALID, "amount"),
        (True, "USD", MoneyRejectReason.AMOUNT_TYPE_INVALID, "amount"),
        (None, "USD", MoneyRejectReason.AMOUNT_TYPE_INVALID, "amount"),
        (Decimal("NaN"), "USD", MoneyRejectReason.AMOUNT_NOT_FINITE, "amount"),
        (Decimal("Infinity"), "USD", MoneyRejectReason.AMOUNT_NOT_FINITE, "amount"),
        ("1e3", "USD", MoneyRejectReason.AMOUNT_SYNTAX_INVALID, "amount"),
        (" 1", "USD", MoneyRejectReason.AMOUNT_SYNTAX_INVALID, "amount"),
        ("1,000", "USD", MoneyRejectReason.AMOUNT_SYNTAX_INVALID, "amount"),
        ("", "USD", MoneyRejectReason.AMOUNT_SYNTAX_INVALID, "amount"),
        ("1" * 40, "USD", MoneyRejectReason.AMOUNT_SYNTAX_INVALID, "amount"),
        ("10", "XXX", MoneyRejectReason.CURRENCY_UNKNOWN, "currency"),
        ("1000000000000.01", "USD", MoneyRejectReason.AMOUNT_OUT_OF_RANGE, "amount"),
    ],
)
def test_parse_money_rejects_with_the_field_named(
    value: object, currency: str, reason: MoneyRejectReason, field: str
) -> None:
    result = parse_money(value, currency)  # type: ignore[arg-type]
    assert isinstance(result, Rejected)
    assert result.reason is reason
    assert result.field == field


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(10010, "USD"), "100.10"),
        (Money(5, "USD"), "0.05"),
        (Money(-5, "EUR"), "-0.05"),
        (Money(0, "GBP"), "0.00"),
        (Money(1234, "JPY"), "1234"),
        (Money(1, "KWD"), "0.001"),
    ],
)
def test_format_amount_writes_major_units(money: Money, text: str) -> None:
    assert format_amount(money) == text


@given(
    amount_minor=st.integers(-limits.amount_minor_max, limits.amount_minor_max),
    currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)),
)
def test_format_then_parse_round_trips(amount_minor: int, currency: str) -> None:
    money = Money(amount_minor, currency)
    assert parse_money(format_amount(money), currency) == money


@given(currency=st.text(alphabet="ABCDEGJKLPRSUWYZ", min_size=0, max_size=4))
def test_check_currency_refuses_what_parse_money_refuses_as_a_currency(currency: str) -> None:
    checked = check_currency(currency)
    parsed = parse_money(0, currency)
    if currency in CURRENCY_EXPONENTS:
        assert checked is None
        assert parsed == Money(0, currency)
    else:
        assert checked == parsed
        assert isinstance(checked, Rejected)
        assert checked.reason is MoneyRejectReason.CURRENCY_UNKNOWN
        assert checked.field == "currency"


def test_money_refuses_a_float_amount() -> None:
    with pytest.raises(AssertionError):
        Money(1.0, "USD")  # type: ignore[arg-type]


@given(st.integers(0, 10**18), st.integers(1, 10**6))
def test_div_helpers_bracket_the_true_quotient(numerator: int, denominator: int) -> None:
    floor = div_floor(numerator, denominator)
    nearest = div_round_half_even(numerator, denominator)
    assert floor * denominator <= numerator < (floor + 1) * denominator
    assert abs(nearest * denominator - numerator) * 2 <= denominator


@pytest.mark.parametrize(("n", "d", "q"), [(5, 2, 2), (7, 2, 4), (15, 10, 2), (25, 10, 2)])
def test_div_round_half_even_breaks_ties_to_even(n: int, d: int, q: int) -> None:
    assert div_round_half_even(n, d) == q


def test_reason_values_are_unique_across_enums() -> None:
    from aex.core import reasons

    values = [
        member.value
        for enum in vars(reasons).values()
        if isinstance(enum, type)
        and issubclass(enum, reasons.Reason)
        and enum is not reasons.Reason
        for member in enum
    ]
    assert len(values) == len(set(values))
