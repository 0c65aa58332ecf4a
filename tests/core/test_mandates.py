"""AP2 intent mandates (aex/core/mandates.py): the limit rule, the signed document, receipts."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from aex.core import limits
from aex.core.certs import LocalSigner, b64url_decode, b64url_encode
from aex.core.mandates import (
    Mandate,
    check_mandate,
    mandate_kid,
    receipt_payload,
    sign_mandate,
    sign_receipt,
    verify_mandate,
)
from aex.core.money import Money
from aex.core.reasons import MandateRejectReason

NOW_MS = 1_800_000_000_000
MAX_MINOR = limits.amount_minor_max // 2


def mandate(**changes: object) -> Mandate:
    base = Mandate(
        mandate_id="mdt_1",
        tenant_id="ten_1",
        agent_key_id=None,
        amount_per_work_minor=15_000,
        amount_total_minor=30_000,
        currency="USD",
        categories=("TECHNOLOGY",),
        expires_at_ms=NOW_MS + 3_600_000,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def check(m: Mandate, spent: int, amount: int, **changes: object) -> object:
    found = check_mandate(
        m,
        spent,
        amount,
        str(changes.get("currency", "USD")),
        str(changes.get("category", "TECHNOLOGY")),
        int(changes.get("now_ms", NOW_MS)),  # type: ignore[call-overload]
        agent_key_id=changes.get("agent_key_id"),  # type: ignore[arg-type]
    )
    return None if found is None else found.reason


@pytest.mark.parametrize(
    ("m", "spent", "amount", "changes", "reason"),
    [
        (mandate(), 0, 15_000, {}, None),
        (mandate(), 0, 15_001, {}, MandateRejectReason.MANDATE_AMOUNT_PER_WORK_EXCEEDED),
        (mandate(), 15_000, 15_000, {}, None),
        (mandate(), 15_001, 15_000, {}, MandateRejectReason.MANDATE_TOTAL_EXCEEDED),
        (mandate(), 0, 100, {"currency": "EUR"}, MandateRejectReason.MANDATE_CURRENCY_MISMATCH),
        (
            mandate(),
            0,
            100,
            {"category": "LEGAL"},
            MandateRejectReason.MANDATE_CATEGORY_NOT_ALLOWED,
        ),
        (mandate(), 0, 100, {"now_ms": NOW_MS + 3_600_000}, MandateRejectReason.MANDATE_EXPIRED),
        (mandate(revoked=True), 0, 100, {}, MandateRejectReason.MANDATE_REVOKED),
        (
            mandate(agent_key_id="key_a"),
            0,
            100,
            {"agent_key_id": "key_b"},
            MandateRejectReason.MANDATE_AGENT_MISMATCH,
        ),
        (mandate(agent_key_id="key_a"), 0, 100, {"agent_key_id": "key_a"}, None),
        # Precedence: revoked before expired before the limits.
        (
            mandate(revoked=True),
            99_999,
            99_999,
            {"now_ms": NOW_MS * 2},
            MandateRejectReason.MANDATE_REVOKED,
        ),
        (
            mandate(),
            99_999,
            99_999,
            {"category": "LEGAL"},
            MandateRejectReason.MANDATE_CATEGORY_NOT_ALLOWED,
        ),
    ],
)
def test_check_mandate_names_the_first_limit_exceeded(
    m: Mandate, spent: int, amount: int, changes: dict[str, object], reason: object
) -> None:
    assert check(m, spent, amount, **changes) == reason


@given(
    per_work=st.integers(1, MAX_MINOR),
    extra=st.integers(0, MAX_MINOR),
    spent=st.integers(0, 2 * MAX_MINOR),
    amount=st.integers(0, 2 * MAX_MINOR),
)
def test_a_mandate_admits_exactly_the_work_within_both_limits(
    per_work: int, extra: int, spent: int, amount: int
) -> None:
    m = mandate(amount_per_work_minor=per_work, amount_total_minor=per_work + extra)
    found = check(m, spent, amount)
    if amount > per_work:
        assert found is MandateRejectReason.MANDATE_AMOUNT_PER_WORK_EXCEEDED
    elif spent + amount > per_work + extra:
        assert found is MandateRejectReason.MANDATE_TOTAL_EXCEEDED
    else:
        assert found is None


@given(amounts=st.lists(st.integers(1, 20_000), max_size=40))
def test_admitted_work_never_sums_beyond_the_total(amounts: list[int]) -> None:
    m = mandate()
    spent = 0
    for amount in amounts:
        if check(m, spent, amount) is None:
            spent += amount
        assert spent <= m.amount_total_minor


def _signed(signer: LocalSigner, **changes: object) -> str:
    fields: dict[str, object] = {
        "mandate_id": "mdt_1",
        "tenant_id": "ten_1",
        "currency": "USD",
        "amount_per_work": "150.00",
        "amount_total": "300",
        "categories": ["TECHNOLOGY"],
        "issued_at_s": NOW_MS // 1000,
        "expires_at_s": NOW_MS // 1000 + 3600,
    }
    fields.update(changes)
    return sign_mandate(signer=signer, **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def signer() -> LocalSigner:
    return LocalSigner.from_private_key(ec.generate_private_key(ec.SECP256R1()))


def test_a_signed_mandate_verifies_into_its_limits(signer: LocalSigner) -> None:
    token = _signed(signer, agent_key_id="key_a", description="code reviews")
    assert mandate_kid(token) == signer.kid
    found = verify_mandate(token, public_key=signer.public_key, tenant_id="ten_1", now_ms=NOW_MS)
    assert isinstance(found, Mandate)
    assert (found.amount_per_work_minor, found.amount_total_minor) == (15_000, 30_000)
    assert found.agent_key_id == "key_a"
    assert found.expires_at_ms == NOW_MS + 3_600_000


def test_a_tampered_mandate_fails_its_signature(signer: LocalSigner) -> None:
    header, payload, signature = _signed(signer).split(".")
    claims = (b64url_decode(payload) or b"").replace(b"300", b"900")
    tampered = f"{header}.{b64url_encode(claims)}.{signature}"
    found = verify_mandate(tampered, public_key=signer.public_key, tenant_id="ten_1", now_ms=NOW_MS)
    assert not isinstance(found, Mandate)
    assert found.reason is MandateRejectReason.MANDATE_SIGNATURE_INVALID


@pytest.mark.parametrize(
    ("token_changes", "tenant", "now_ms", "reason"),
    [
        ({"amount_per_work": "301"}, "ten_1", NOW_MS, MandateRejectReason.MANDATE_MALFORMED),
        ({"categories": []}, "ten_1", NOW_MS, MandateRejectReason.MANDATE_MALFORMED),
        ({"currency": "XYZ"}, "ten_1", NOW_MS, MandateRejectReason.MANDATE_MALFORMED),
        ({}, "ten_2", NOW_MS, MandateRejectReason.MANDATE_ISSUER_MISMATCH),
        ({}, "ten_1", NOW_MS + 3_600_000, MandateRejectReason.MANDATE_EXPIRED),
    ],
)
def test_a_mandate_outside_the_rules_is_refused_naming_why(
    signer: LocalSigner, token_changes: dict[str, object], tenant: str, now_ms: int, reason: object
) -> None:
    token = _signed(signer, **token_changes)
    found = verify_mandate(token, public_key=signer.public_key, tenant_id=tenant, now_ms=now_ms)
    assert not isinstance(found, Mandate)
    assert found.reason is reason


def test_an_unknown_key_and_garbage_are_refused(signer: LocalSigner) -> None:
    token = _signed(signer)
    unknown = verify_mandate(token, public_key=None, tenant_id="ten_1", now_ms=NOW_MS)
    assert not isinstance(unknown, Mandate)
    assert unknown.reason is MandateRejectReason.MANDATE_KEY_UNKNOWN
    for garbage in ("", "a.b.c", 17, "x" * 10_000):
        found = verify_mandate(garbage, public_key=signer.public_key, tenant_id="t", now_ms=0)
        assert not isinstance(found, Mandate)
        assert found.reason is MandateRejectReason.MANDATE_MALFORMED


def test_a_receipt_names_its_contract_mandate_and_amount(signer: LocalSigner) -> None:
    payload = receipt_payload(
        kind="checkout",
        receipt_id="rcpt_1",
        issuer="https://aex.example",
        mandate_id="mdt_1",
        contract_id="contract_1",
        payer_tenant_id="ten_1",
        payee_provider_id="prov_1",
        amount=Money(10_000, "USD"),
        issued_at_ms=NOW_MS,
    )
    assert payload["payment_mandate_id"] == "pm_contract_1"
    assert payload["amount"] == "100.00"
    token = sign_receipt(payload, signer=signer)
    assert token.count(".") == 2
