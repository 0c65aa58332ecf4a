# Rule: what an AP2 intent mandate is (who signs it, which limits it states), how it is
# verified, whether a work falls within it, and what the exchange's signed receipts say, is
# decided here and only here.
#
# Theory of operation (issue 15 item 2; AP2 v0.2, ap2-protocol.org: "Intent Mandate", "Cart
# Mandate", "Payment Mandate"; docs/payments.md "AP2 mandates"):
#   - The consumer's user pre-authorises its agent: it registers a P-256 public key with the
#     exchange (the credentials provider) and signs an intent mandate with it, a compact JWS
#     (RFC 7515) ES256, header {"alg": "ES256", "typ": "aex-intent-mandate+jwt", "kid": <RFC 7638
#     thumbprint>}, payload the JCS form of {"iss": tenant id, "sub"?: the agent's API key id,
#     "jti": mandate id, "iat", "exp" (seconds), "currency", "amount_per_work", "amount_total"
#     (decimal strings in major units), "categories": [...], "description"?}. Any JOSE library
#     verifies it.
#   - A work submitted under a mandate, and again the contract at award, is checked against it
#     (`check_mandate`, reasons in MandateRejectReason order): not revoked, not expired, the
#     right agent, currency, category, at most amount_per_work, and spent + amount at most
#     amount_total. What counts as spent is the driver's sum (serve/credentials/mandates.py): the
#     budget max of the mandate's open work and the price of its live contracts.
#   - At award the exchange binds the contract to a payment mandate (AP2's PaymentMandate: the
#     intent mandate, the amount, payer and payee) and signs a checkout receipt (AP2's merchant-
#     signed CartMandate, here signed by the exchange's CA key); at settlement a payment
#     receipt. Receipts are JWS ES256 with typ "aex-receipt+jwt" and kid the CA key's: a
#     verifier checks them with the keys in /.well-known/aex-ca.json.
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from cryptography.hazmat.primitives.asymmetric import ec

from aex.core import limits
from aex.core.certs import Signer, _verify_raw, b64url_decode
from aex.core.jws import json_part, sign_compact
from aex.core.money import CURRENCY_EXPONENTS, Money, format_amount, parse_money
from aex.core.reasons import MandateRejectReason, Rejected
from aex.core.text import check_display_text

__all__ = [
    "MANDATE_TYP",
    "RECEIPT_TYP",
    "Mandate",
    "ReceiptKind",
    "check_mandate",
    "mandate_kid",
    "payment_mandate_id",
    "receipt_payload",
    "sign_mandate",
    "sign_receipt",
    "verify_mandate",
]

MANDATE_TYP: Final = "aex-intent-mandate+jwt"
RECEIPT_TYP: Final = "aex-receipt+jwt"
ReceiptKind = Literal["checkout", "payment"]
_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CATEGORY: Final = re.compile(r"[A-Z][A-Z0-9_]{0,31}")
_REQUIRED: Final = frozenset(
    {"iss", "jti", "iat", "exp", "currency", "amount_per_work", "amount_total", "categories"}
)
_OPTIONAL: Final = frozenset({"sub", "description"})
_SECONDS_MAX: Final = 2**40
assert limits.mandate_token_chars_max < 2**16
assert 0 < limits.mandate_categories_max <= 64


@dataclass(frozen=True, slots=True)
class Mandate:
    """An intent mandate as the exchange holds it: what the tenant's user authorised its
    agent (the API key `agent_key_id`, any of the tenant's keys if None) to spend."""

    mandate_id: str
    tenant_id: str
    agent_key_id: str | None
    amount_per_work_minor: int
    amount_total_minor: int
    currency: str
    categories: tuple[str, ...]
    expires_at_ms: int
    revoked: bool = False
    issued_at_ms: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        assert 0 < self.amount_per_work_minor <= self.amount_total_minor
        assert self.amount_total_minor <= limits.amount_minor_max
        assert self.currency in CURRENCY_EXPONENTS
        assert 0 < len(self.categories) <= limits.mandate_categories_max
        assert 0 <= self.issued_at_ms < self.expires_at_ms

    def limits_json(self) -> dict[str, object]:
        return {
            "currency": self.currency,
            "amount_per_work": format_amount(Money(self.amount_per_work_minor, self.currency)),
            "amount_total": format_amount(Money(self.amount_total_minor, self.currency)),
            "categories": list(self.categories),
        }


def check_mandate(
    mandate: Mandate,
    spent_minor: int,
    work_amount_minor: int,
    currency: str,
    category: str,
    now_ms: int,
    *,
    agent_key_id: str | None = None,
) -> Rejected[MandateRejectReason] | None:
    """Whether a work (or, at award, its contract) falls within the mandate.

    AP2: the credentials provider checks each purchase against the user's intent mandate.
    Checks run in MandateRejectReason order, so the first limit exceeded is the answer.

    Args:
        mandate: the stored mandate.
        spent_minor: what the mandate already covers (other work and contracts), >= 0.
        work_amount_minor: this work's amount (its budget max at submission, price at award).
        currency, category: the work's.
        now_ms: the clock.
        agent_key_id: the API key the agent called with (checked if the mandate names one).

    Returns:
        None, or the Rejected naming the limit: MANDATE_REVOKED, MANDATE_EXPIRED,
        MANDATE_AGENT_MISMATCH, MANDATE_CURRENCY_MISMATCH, MANDATE_CATEGORY_NOT_ALLOWED,
        MANDATE_AMOUNT_PER_WORK_EXCEEDED, MANDATE_TOTAL_EXCEEDED.
    """
    assert spent_minor >= 0
    assert work_amount_minor >= 0
    reason = MandateRejectReason
    if mandate.revoked:
        return Rejected(reason.MANDATE_REVOKED, "mandate_id", "the mandate was revoked")
    if now_ms >= mandate.expires_at_ms:
        return Rejected(reason.MANDATE_EXPIRED, "mandate_id", "the mandate has expired")
    if mandate.agent_key_id is not None and agent_key_id != mandate.agent_key_id:
        return Rejected(reason.MANDATE_AGENT_MISMATCH, "mandate_id", "another agent's mandate")
    if currency != mandate.currency:
        return Rejected(
            reason.MANDATE_CURRENCY_MISMATCH, "budget.currency", f"only {mandate.currency}"
        )
    if category not in mandate.categories:
        allowed = ", ".join(mandate.categories)
        return Rejected(reason.MANDATE_CATEGORY_NOT_ALLOWED, "category", f"only {allowed}")
    limits_view = mandate.limits_json()
    if work_amount_minor > mandate.amount_per_work_minor:
        return Rejected(
            reason.MANDATE_AMOUNT_PER_WORK_EXCEEDED,
            "budget.max",
            f"at most {limits_view['amount_per_work']} {mandate.currency} per work",
        )
    if spent_minor + work_amount_minor > mandate.amount_total_minor:
        left = format_amount(
            Money(max(0, mandate.amount_total_minor - spent_minor), mandate.currency)
        )
        return Rejected(
            reason.MANDATE_TOTAL_EXCEEDED,
            "budget.max",
            f"{left} {mandate.currency} left of {limits_view['amount_total']}",
        )
    return None


# -- the intent mandate: signed by the user, verified by the exchange ---------------------------


def sign_mandate(
    *,
    mandate_id: str,
    tenant_id: str,
    currency: str,
    amount_per_work: str,
    amount_total: str,
    categories: Sequence[str],
    issued_at_s: int,
    expires_at_s: int,
    signer: Signer,
    agent_key_id: str | None = None,
    description: str = "",
) -> str:
    """The user's side: the signed intent mandate (compact JWS, ES256)."""
    header = {"alg": "ES256", "typ": MANDATE_TYP, "kid": signer.kid}
    payload: dict[str, Any] = {
        "iss": tenant_id,
        "jti": mandate_id,
        "iat": issued_at_s,
        "exp": expires_at_s,
        "currency": currency,
        "amount_per_work": amount_per_work,
        "amount_total": amount_total,
        "categories": list(categories),
    }
    if agent_key_id is not None:
        payload["sub"] = agent_key_id
    if description:
        payload["description"] = description
    return sign_compact(header, payload, signer)


def mandate_kid(token: Any) -> str | None:
    """The kid a mandate names (to look its key up), or None if it has no readable header."""
    if type(token) is not str or len(token) > limits.mandate_token_chars_max:
        return None
    if token.count(".") != 2:
        return None
    header = json_part(token.split(".", 1)[0])
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if type(kid) is str else None


def _categories(value: Any) -> tuple[str, ...] | None:
    if type(value) is not list or not 0 < len(value) <= limits.mandate_categories_max:
        return None
    if any(type(c) is not str or not _CATEGORY.fullmatch(c) for c in value):
        return None
    return tuple(dict.fromkeys(value))


def _amount(value: Any, currency: str) -> int | None:
    if type(value) is not str:
        return None
    money = parse_money(value, currency)
    if isinstance(money, Rejected) or money.amount_minor <= 0:
        return None
    return money.amount_minor


def _text(payload: dict[str, Any], key: str, pattern: re.Pattern[str]) -> str | None:
    value = payload.get(key)
    return value if type(value) is str and pattern.fullmatch(value) else None


def _payload(payload: Any) -> Mandate | None:
    # The claims, strictly: required keys, no unknown key, each of its type and range.
    if type(payload) is not dict or not _REQUIRED <= payload.keys() <= _REQUIRED | _OPTIONAL:
        return None
    tenant_id, mandate_id = _text(payload, "iss", _ID), _text(payload, "jti", _ID)
    agent = _text(payload, "sub", _ID)
    if tenant_id is None or mandate_id is None or ("sub" in payload and agent is None):
        return None
    iat, exp = payload["iat"], payload["exp"]
    if type(iat) is not int or type(exp) is not int or not 0 <= iat < exp < _SECONDS_MAX:
        return None
    currency = payload["currency"]
    if type(currency) is not str or currency not in CURRENCY_EXPONENTS:
        return None
    per_work = _amount(payload["amount_per_work"], currency)
    total = _amount(payload["amount_total"], currency)
    categories = _categories(payload["categories"])
    description = payload.get("description", "")
    if per_work is None or total is None or per_work > total or categories is None:
        return None
    if type(description) is not str or len(description) > limits.mandate_description_chars_max:
        return None
    if check_display_text(description, field="description") is not None:
        return None  # no control (NUL included) or bidi control characters: text people read
    return Mandate(
        mandate_id=mandate_id,
        tenant_id=tenant_id,
        agent_key_id=agent,
        amount_per_work_minor=per_work,
        amount_total_minor=total,
        currency=currency,
        categories=categories,
        expires_at_ms=exp * 1000,
        issued_at_ms=iat * 1000,
        description=description,
    )


def verify_mandate(
    token: Any, *, public_key: ec.EllipticCurvePublicKey | None, tenant_id: str, now_ms: int
) -> Mandate | Rejected[MandateRejectReason]:
    """Checks a signed intent mandate, in MandateRejectReason order: its shape, the key (the
    tenant's registered key, found by kid; None if it has none by that kid), the ES256
    signature, that it is the tenant's (`iss`), and expiry.

    Returns:
        The Mandate, or MANDATE_MALFORMED, MANDATE_KEY_UNKNOWN, MANDATE_SIGNATURE_INVALID,
        MANDATE_ISSUER_MISMATCH, MANDATE_EXPIRED.
    """
    reason = MandateRejectReason
    kid = mandate_kid(token)
    if kid is None:
        return Rejected(reason.MANDATE_MALFORMED, "mandate", "a compact JWS")
    header_part, payload_part, signature_part = token.split(".")
    if json_part(header_part) != {"alg": "ES256", "typ": MANDATE_TYP, "kid": kid}:
        return Rejected(reason.MANDATE_MALFORMED, "mandate", f"header alg ES256, typ {MANDATE_TYP}")
    mandate = _payload(json_part(payload_part))
    if mandate is None:
        return Rejected(reason.MANDATE_MALFORMED, "mandate", "claims as docs/payments.md says")
    if public_key is None:
        return Rejected(reason.MANDATE_KEY_UNKNOWN, "mandate.kid", "register the key first")
    signature = b64url_decode(signature_part)
    signed = f"{header_part}.{payload_part}".encode("ascii")
    if signature is None or not _verify_raw(public_key, signature, signed):
        return Rejected(reason.MANDATE_SIGNATURE_INVALID, "mandate", "signature does not verify")
    if mandate.tenant_id != tenant_id:
        return Rejected(reason.MANDATE_ISSUER_MISMATCH, "mandate.iss", "iss is not your tenant")
    if now_ms >= mandate.expires_at_ms:
        return Rejected(reason.MANDATE_EXPIRED, "mandate.exp", "the mandate has expired")
    assert mandate.revoked is False
    return mandate


# -- the payment mandate and the receipts: signed by the exchange's CA key ----------------------


def payment_mandate_id(contract_id: str) -> str:
    """The payment mandate binding a contract to its intent mandate: one per contract."""
    assert _ID.fullmatch(contract_id)
    return f"pm_{contract_id}"


def receipt_payload(
    *,
    kind: ReceiptKind,
    receipt_id: str,
    issuer: str,
    mandate_id: str,
    contract_id: str,
    payer_tenant_id: str,
    payee_provider_id: str,
    amount: Money,
    issued_at_ms: int,
) -> dict[str, Any]:
    """A checkout (at award) or payment (at settlement) receipt's claims."""
    assert kind in ("checkout", "payment")
    assert amount.amount_minor > 0
    return {
        "iss": issuer,
        "sub": contract_id,
        "jti": receipt_id,
        "iat": issued_at_ms // 1000,
        "receipt_type": kind,
        "contract_id": contract_id,
        "mandate_id": mandate_id,
        "payment_mandate_id": payment_mandate_id(contract_id),
        "payer": payer_tenant_id,
        "payee": payee_provider_id,
        "amount": format_amount(amount),
        "currency": amount.currency,
    }


def sign_receipt(payload: dict[str, Any], *, signer: Signer) -> str:
    """The receipt as a compact JWS (ES256) under the CA key `signer` (kid in the header)."""
    assert payload["receipt_type"] in ("checkout", "payment")
    return sign_compact({"alg": "ES256", "typ": RECEIPT_TYP, "kid": signer.kid}, payload, signer)
