# Rule: how money is represented, parsed, formatted and divided is decided here and only here.
#
# Theory of operation: an amount is an `int` of minor units (cents for USD, yen for JPY) plus an
# ISO 4217 currency code. No float touches a money path: parsing goes through `decimal.Decimal`
# from the literal the user typed, and a value that has more decimals than the currency allows
# is rejected, never rounded ("0.001" USD is an error). Every division of money goes through a
# named helper below, so that its rounding is visible where it is used.
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from aex.core import limits
from aex.core.reasons import MoneyRejectReason, Rejected

__all__ = [
    "CURRENCY_EXPONENTS",
    "Money",
    "check_currency",
    "div_floor",
    "div_round_half_even",
    "format_amount",
    "format_minor",
    "parse_money",
]

# ISO 4217 minor-unit exponents for the currencies AEX settles in.
CURRENCY_EXPONENTS: Final[dict[str, int]] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CHF": 2,
    "CAD": 2,
    "AUD": 2,
    "CNY": 2,
    "INR": 2,
    "SEK": 2,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "BHD": 3,
}
assert all(0 <= e <= limits.currency_exponent_max for e in CURRENCY_EXPONENTS.values())

# A plain decimal literal: optional sign, digits, optional fraction. No exponents, no spaces,
# no thousands separators, no leading "+" or ".": what a person would write on an invoice.
_DECIMAL_LITERAL: Final = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of integer minor units in one currency."""

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        assert type(self.amount_minor) is int, "amount_minor must be an int (never a float)"
        assert self.currency in CURRENCY_EXPONENTS, f"unknown currency {self.currency!r}"
        assert abs(self.amount_minor) <= limits.amount_minor_max


def parse_money(
    value: str | int | Decimal, currency: str, *, field: str = "amount"
) -> Money | Rejected[MoneyRejectReason]:
    """Parses a major-unit amount ("100.10", 100, Decimal("100.1")) exactly into minor units.

    JSON numbers reach this function as `Decimal` (drivers decode JSON with a Decimal float
    hook), so `100.1` is the literal the user typed, not its nearest binary float.

    Args:
        value: the amount in major units, as a decimal string, an int or a Decimal.
        currency: an ISO 4217 code from CURRENCY_EXPONENTS.
        field: the name reported in a rejection.

    Returns:
        The Money, or a Rejected naming `field` (or "currency"):
        AMOUNT_TYPE_INVALID for floats, bools and other types; AMOUNT_NOT_FINITE;
        AMOUNT_SYNTAX_INVALID; CURRENCY_UNKNOWN; AMOUNT_PRECISION_EXCEEDED when the amount has
        more decimals than the currency has minor units; AMOUNT_OUT_OF_RANGE.
    """
    decimal_value = _to_decimal(value)
    if isinstance(decimal_value, MoneyRejectReason):
        return Rejected(decimal_value, field, f"cannot read {value!r} as an amount")
    unknown = check_currency(currency)
    if unknown is not None:
        return unknown
    exponent = CURRENCY_EXPONENTS[currency]
    scaled = decimal_value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        return Rejected(
            MoneyRejectReason.AMOUNT_PRECISION_EXCEEDED,
            field,
            f"{currency} has {exponent} decimal places",
        )
    amount_minor = int(scaled)
    if abs(amount_minor) > limits.amount_minor_max:
        return Rejected(MoneyRejectReason.AMOUNT_OUT_OF_RANGE, field, "amount too large")
    return Money(amount_minor, currency)


def check_currency(currency: str) -> Rejected[MoneyRejectReason] | None:
    """None for a currency AEX settles in; CURRENCY_UNKNOWN naming "currency" otherwise."""
    if currency in CURRENCY_EXPONENTS:
        return None
    return Rejected(MoneyRejectReason.CURRENCY_UNKNOWN, "currency", f"{currency!r}")


def _to_decimal(value: object) -> Decimal | MoneyRejectReason:
    # bool is an int subclass and float is inexact: both are refused outright.
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return MoneyRejectReason.AMOUNT_TYPE_INVALID
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return MoneyRejectReason.AMOUNT_NOT_FINITE
        return value
    if len(value) > limits.amount_literal_chars_max or not _DECIMAL_LITERAL.fullmatch(value):
        return MoneyRejectReason.AMOUNT_SYNTAX_INVALID
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        return MoneyRejectReason.AMOUNT_SYNTAX_INVALID


def format_amount(money: Money) -> str:
    """Formats minor units back as a major-unit decimal string: Money(10010, "USD") -> "100.10"."""
    return format_minor(money.amount_minor, money.currency)


def format_minor(amount_minor: int, currency: str) -> str:
    """`format_amount` of an amount already held as minor units of a known currency (a stored
    balance), without building its Money: format_minor(10010, "USD") -> "100.10"."""
    exponent = CURRENCY_EXPONENTS[currency]
    sign = "-" if amount_minor < 0 else ""
    digits = str(abs(amount_minor)).rjust(exponent + 1, "0")
    if exponent == 0:
        return sign + digits
    return f"{sign}{digits[:-exponent]}.{digits[-exponent:]}"


def div_floor(numerator: int, denominator: int) -> int:
    """Integer division rounding toward negative infinity (Python's //), for non-negative money."""
    assert denominator > 0
    return numerator // denominator


def div_round_half_even(numerator: int, denominator: int) -> int:
    """Integer division rounding to nearest, ties to even (banker's rounding)."""
    assert denominator > 0
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient
