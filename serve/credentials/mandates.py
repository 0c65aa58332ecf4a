"""AP2 mandates: the exchange as the consumer's credentials provider (issue 15 item 2).

The rules (what a mandate says, how it is verified, whether a work fits it, what a receipt
states) are aex/core/mandates.py; this driver stores the user keys and the verified mandates in
the market's database, with `mandate.created` / `mandate.revoked` in the outbox, and gives the
market (serve/market/usecases.py) three steps inside its own write transactions:

- `cover_work` at work submission: the mandate row is locked (`tx.for_update`; SQLite
  serialises writers), what it has spent is summed, `check_mandate` decides, and the work is
  recorded as covered (`mandate_work`), or the submission is refused naming the limit and its
  transaction rolls back: nothing is written;
- `award_refusal` at award: the same check with the winning price (the mandate may have been
  revoked or have expired since the work was submitted: the work is then left UNFILLED);
- `issue_receipt` at award (checkout) and settlement (payment): a receipt signed by the CA's
  active key, bound to the contract's payment mandate, with `receipt.issued` in the outbox.

Spent: the budget max of the mandate's OPEN or EVALUATING work plus the price of its contracts
that are not FAILED, CANCELLED or REFUNDED (money that did not leave does not count).

Access: a mandate is its tenant's; any other caller gets 404 as for a missing id. Receipts are
read by the contract's parties.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import msgspec

from aex.core import Money, Rejected, format_amount, limits
from aex.core.certs import Signer, b64url_decode, jwk_thumbprint, public_key_from_jwk
from aex.core.events import EventType
from aex.core.mandates import (
    Mandate,
    ReceiptKind,
    check_mandate,
    mandate_kid,
    receipt_payload,
    sign_receipt,
    verify_mandate,
)
from aex.core.reasons import MandateRejectReason
from serve.credentials.schemas import (
    MandateCreate,
    MandateKeyCreate,
    MandateKeyView,
    MandateLimits,
    MandateView,
    ReceiptList,
    ReceiptView,
)
from serve.gateway.paging import ID_PATTERN
from serve.gateway.problems import FieldError, ProblemError, problem_for_rejected
from serve.identity.security import Principal, new_id, now_ms
from serve.stores.rows import many, one, scalar, scalars, select_list

# Receipts name the exchange's CA as their issuer, as its VC-JWTs do
# (serve/certauth/certificates.py).
RECEIPT_ISSUER = "https://aex.example/.well-known/aex-ca.json"
RECEIPTS_PER_CONTRACT_MAX = 2  # one checkout, one payment (UNIQUE (contract_id, kind))
_ID = re.compile(ID_PATTERN)  # the one id shape (serve/gateway/paging.py)


class _MandateRow(NamedTuple):
    mandate_id: str
    tenant_id: str
    agent_key_id: str | None
    amount_per_work_minor: int
    amount_total_minor: int
    currency: str
    categories: str  # JSON array
    expires_at_ms: int
    revoked_at_ms: int | None
    issued_at_ms: int
    description: str
    kid: str


class _IssuedMandate(NamedTuple):
    tenant_id: str
    token: str


class _ReceiptRow(NamedTuple):
    receipt_id: str
    kind: str
    contract_id: str
    mandate_id: str
    issued_at_ms: int
    token: str


_COLUMNS = select_list(_MandateRow)
_SPENT = (
    "SELECT coalesce(sum(CASE WHEN w.state IN ('OPEN', 'EVALUATING') THEN w.budget_max_minor"
    " WHEN c.state IS NOT NULL AND c.state NOT IN ('FAILED', 'CANCELLED', 'REFUNDED')"
    " THEN c.price_minor ELSE 0 END), 0)"
    " FROM mandate_work m JOIN work w ON w.work_id = m.work_id"
    " LEFT JOIN contracts c ON c.contract_id = w.contract_id"
    " WHERE m.mandate_id = ? AND m.work_id <> ?"
)


def is_id(value: object) -> bool:
    """Ids here are `[A-Za-z0-9_-]{1,64}` (aex/core/mandates.py): anything else names nothing
    and never reaches the database (PostgreSQL text cannot hold NUL)."""
    return type(value) is str and _ID.fullmatch(value) is not None


def _not_found() -> ProblemError:
    return ProblemError(
        404, "not-found", "no such mandate", errors=(FieldError("mandate_id", "not_found"),)
    )


def _mandate(row: _MandateRow) -> Mandate:
    return Mandate(
        mandate_id=row.mandate_id,
        tenant_id=row.tenant_id,
        agent_key_id=row.agent_key_id,
        amount_per_work_minor=int(row.amount_per_work_minor),
        amount_total_minor=int(row.amount_total_minor),
        currency=row.currency,
        categories=tuple(json.loads(row.categories)),
        expires_at_ms=int(row.expires_at_ms),
        revoked=row.revoked_at_ms is not None,
        issued_at_ms=int(row.issued_at_ms),
        description=row.description,
    )


def _spent(connection: Any, mandate_id: str, but_work_id: str = "") -> int:
    spent = int(scalar(connection.execute(_SPENT, (mandate_id, but_work_id))))
    assert spent >= 0
    return spent


# -- inside the market's transactions -----------------------------------------------------------


def cover_work(
    tx: Any,
    caller: Principal,
    mandate_id: str,
    *,
    work_id: str,
    amount: Money,
    category: str,
) -> None:
    """At submission: refuses (rolling the transaction back) a work beyond the mandate."""
    if not is_id(mandate_id):
        raise _not_found()
    row = one(
        _MandateRow,
        tx.execute(
            f"SELECT {_COLUMNS} FROM mandates WHERE mandate_id = ?{tx.for_update}",  # noqa: S608
            (mandate_id,),
        ),
    )
    if row is None or row.tenant_id != caller.tenant_id:
        raise _not_found()
    mandate = _mandate(row)
    refused = check_mandate(
        mandate,
        _spent(tx.connection, mandate_id),
        amount.amount_minor,
        amount.currency,
        category,
        tx.now_ms,
        agent_key_id=caller.key_id,
    )
    if refused is not None:
        raise problem_for_rejected(refused)
    tx.execute("INSERT INTO mandate_work VALUES (?, ?)", (work_id, mandate_id))


def award_refusal(
    tx: Any, work_id: str, price: Money, category: str
) -> tuple[str | None, Rejected[MandateRejectReason] | None]:
    """At award: the work's mandate (None if it has none) and why the price is refused."""
    row = one(
        _MandateRow,
        tx.execute(
            f"SELECT {_COLUMNS} FROM mandates WHERE mandate_id ="  # noqa: S608
            f" (SELECT mandate_id FROM mandate_work WHERE work_id = ?){tx.for_update}",
            (work_id,),
        ),
    )
    if row is None:
        return None, None
    mandate = _mandate(row)
    refused = check_mandate(
        mandate,
        _spent(tx.connection, mandate.mandate_id, but_work_id=work_id),
        price.amount_minor,
        price.currency,
        category,
        tx.now_ms,
        agent_key_id=mandate.agent_key_id,  # the agent was checked when it submitted
    )
    return mandate.mandate_id, refused


def issue_receipt(
    tx: Any,
    kind: ReceiptKind,
    *,
    mandate_id: str,
    contract_id: str,
    payer_tenant_id: str,
    payee_provider_id: str,
    amount: Money,
) -> None:
    """Signs and stores the contract's `kind` receipt under the CA's active key."""
    signer: Callable[[], Signer] | None = tx.receipt_signer
    assert signer is not None, "the app gives the market the CA's signer"
    receipt_id = new_id("rcpt")
    payload = receipt_payload(
        kind=kind,
        receipt_id=receipt_id,
        issuer=RECEIPT_ISSUER,
        mandate_id=mandate_id,
        contract_id=contract_id,
        payer_tenant_id=payer_tenant_id,
        payee_provider_id=payee_provider_id,
        amount=amount,
        issued_at_ms=tx.now_ms,
    )
    token = sign_receipt(payload, signer=signer())
    inserted = tx.execute(
        "INSERT INTO receipts VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (contract_id, kind)"
        " DO NOTHING RETURNING receipt_id",
        (receipt_id, contract_id, kind, mandate_id, token, tx.now_ms),
    ).fetchone()
    if inserted is not None:
        tx.emit(
            EventType.RECEIPT_ISSUED,
            contract_id,
            {
                "receipt_id": receipt_id,
                "kind": kind,
                "contract_id": contract_id,
                "mandate_id": mandate_id,
                "consumer_tenant_id": payer_tenant_id,
                "provider_id": payee_provider_id,
            },
        )


def mandate_of_work(tx: Any, work_id: str) -> str | None:
    found = scalar(tx.execute("SELECT mandate_id FROM mandate_work WHERE work_id = ?", (work_id,)))
    return None if found is None else str(found)


def receipt_ids(connection: Any, contract_id: str) -> set[str]:
    found = connection.execute(
        "SELECT receipt_id FROM receipts WHERE contract_id = ?", (contract_id,)
    )
    return {str(receipt_id) for receipt_id in scalars(found)}


# -- the routes' use cases ----------------------------------------------------------------------


class Mandates:
    def __init__(self, market: Any) -> None:
        self.market = market

    def register_key(self, caller: Principal, body: MandateKeyCreate) -> MandateKeyView:
        tenant_id = _tenant(caller)
        kid = self.market.write(lambda tx: _register_key(tx, tenant_id, body.public_key_jwk))
        return MandateKeyView(tenant_id=tenant_id, kid=kid)

    def create(self, caller: Principal, body: MandateCreate) -> MandateView:
        tenant_id = _tenant(caller)
        kid = mandate_kid(body.mandate)
        kid = kid if is_id(kid) else None  # a thumbprint is 43 base64url characters

        def write(tx: Any) -> str:
            if body.public_key_jwk is not None:
                _register_key(tx, tenant_id, body.public_key_jwk)
            jwk = None
            if kid is not None:
                jwk = scalar(
                    tx.execute(
                        "SELECT jwk FROM mandate_keys WHERE kid = ? AND tenant_id = ?",
                        (kid, tenant_id),
                    )
                )
            key = None if jwk is None else public_key_from_jwk(json.loads(jwk))
            verified = verify_mandate(
                body.mandate, public_key=key, tenant_id=tenant_id, now_ms=tx.now_ms
            )
            if isinstance(verified, Rejected):
                raise problem_for_rejected(verified)
            _insert(tx, verified, kid or "", body.mandate)
            return verified.mandate_id

        mandate_id = self.market.write(write)
        return self.mandate(caller, mandate_id)

    def mandate(self, caller: Principal, mandate_id: str) -> MandateView:
        if not is_id(mandate_id):
            raise _not_found()
        with self.market.db.reader() as connection:
            row = one(
                _MandateRow,
                connection.execute(
                    f"SELECT {_COLUMNS} FROM mandates WHERE mandate_id = ?",  # noqa: S608
                    (mandate_id,),
                ),
            )
            if row is None or row.tenant_id != caller.tenant_id:
                raise _not_found()
            return _view(row, _spent(connection, mandate_id), now_ms())

    def revoke(self, caller: Principal, mandate_id: str) -> MandateView:
        tenant_id = _tenant(caller)
        if not is_id(mandate_id):
            raise _not_found()

        def write(tx: Any) -> None:
            row = one(
                _MandateRow,
                tx.execute(
                    f"SELECT {_COLUMNS} FROM mandates WHERE mandate_id = ?{tx.for_update}",  # noqa: S608
                    (mandate_id,),
                ),
            )
            if row is None or row.tenant_id != tenant_id:
                raise _not_found()
            if row.revoked_at_ms is not None:
                return  # already revoked: the first revocation stands
            tx.execute(
                "UPDATE mandates SET revoked_at_ms = ? WHERE mandate_id = ?",
                (tx.now_ms, mandate_id),
            )
            tx.emit(
                EventType.MANDATE_REVOKED,
                mandate_id,
                {"mandate_id": mandate_id, "tenant_id": tenant_id, "revoked_at_ms": tx.now_ms},
            )

        self.market.write(write)
        return self.mandate(caller, mandate_id)

    def receipts(self, caller: Principal, contract_id: str) -> ReceiptList:
        if not is_id(contract_id):
            raise ProblemError(404, "not-found", "no such contract")
        self.market.contract_or_404(caller, contract_id)  # the parties only; others 404
        rows = many(
            _ReceiptRow,
            self.market.db.read(
                f"SELECT {select_list(_ReceiptRow)}"  # noqa: S608
                " FROM receipts WHERE contract_id = ? ORDER BY issued_at_ms, kind LIMIT ?",
                (contract_id, RECEIPTS_PER_CONTRACT_MAX),
            ),
        )
        return ReceiptList(
            contract_id=contract_id,
            receipts=[
                ReceiptView(
                    receipt_id=row.receipt_id,
                    kind=row.kind,
                    contract_id=row.contract_id,
                    mandate_id=row.mandate_id,
                    issued_at_ms=int(row.issued_at_ms),
                    token=row.token,
                    claims=_claims(row.token),
                )
                for row in rows
            ],
        )


def _tenant(caller: Principal) -> str:
    assert caller.tenant_id is not None, "the routes admit tenant callers only"
    return caller.tenant_id


def _register_key(tx: Any, tenant_id: str, jwk_struct: Any) -> str:
    jwk = dict(msgspec.structs.asdict(jwk_struct))
    key = public_key_from_jwk(jwk)
    if key is None:
        raise ProblemError(
            422,
            "public-key-invalid",
            "a P-256 public JWK",
            errors=(FieldError("public_key_jwk", "public_key_invalid"),),
        )
    kid = jwk_thumbprint(key)
    owner = scalar(tx.execute("SELECT tenant_id FROM mandate_keys WHERE kid = ?", (kid,)))
    if owner is not None and owner != tenant_id:
        raise ProblemError(
            409,
            "mandate-key-taken",
            "this key is registered to another tenant",
            errors=(FieldError("public_key_jwk", "mandate_key_taken"),),
        )
    if owner is None:
        count = scalar(
            tx.execute("SELECT count(*) FROM mandate_keys WHERE tenant_id = ?", (tenant_id,))
        )
        if int(count) >= limits.mandate_keys_per_tenant_max:
            raise ProblemError(
                409,
                "mandate-keys-exceeded",
                f"at most {limits.mandate_keys_per_tenant_max} mandate keys per tenant",
                errors=(FieldError("public_key_jwk", "mandate_keys_exceeded"),),
            )
        tx.execute(
            "INSERT INTO mandate_keys VALUES (?, ?, ?, ?)",
            (kid, tenant_id, msgspec.json.encode(jwk).decode(), tx.now_ms),
        )
    return kid


def _insert(tx: Any, mandate: Mandate, kid: str, token: str) -> None:
    inserted = tx.execute(
        "INSERT INTO mandates (mandate_id, tenant_id, kid, agent_key_id, currency,"
        " amount_per_work_minor, amount_total_minor, categories, description, issued_at_ms,"
        " expires_at_ms, token, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (mandate_id) DO NOTHING RETURNING tenant_id",
        (
            mandate.mandate_id,
            mandate.tenant_id,
            kid,
            mandate.agent_key_id,
            mandate.currency,
            mandate.amount_per_work_minor,
            mandate.amount_total_minor,
            json.dumps(list(mandate.categories)),
            mandate.description,
            mandate.issued_at_ms,
            mandate.expires_at_ms,
            token,
            tx.now_ms,
        ),
    ).fetchone()
    if inserted is None:
        existing = one(
            _IssuedMandate,
            tx.execute(
                f"SELECT {select_list(_IssuedMandate)} FROM mandates WHERE mandate_id = ?",  # noqa: S608
                (mandate.mandate_id,),
            ),
        )
        assert existing is not None, "the INSERT conflicted on this mandate's row"
        if existing.tenant_id != mandate.tenant_id or existing.token != token:
            raise ProblemError(
                409,
                "mandate-id-taken",
                "a different mandate has this id (jti): sign a new one with a fresh id",
                errors=(FieldError("mandate.jti", "mandate_id_taken"),),
            )
        return  # the same document again: registered once
    tx.emit(
        EventType.MANDATE_CREATED,
        mandate.mandate_id,
        {
            "mandate_id": mandate.mandate_id,
            "tenant_id": mandate.tenant_id,
            "agent_key_id": mandate.agent_key_id,
            "limits": mandate.limits_json(),
            "expires_at_ms": mandate.expires_at_ms,
        },
    )


def _view(row: _MandateRow, spent_minor: int, now: int) -> MandateView:
    mandate = _mandate(row)
    state = (
        "REVOKED" if mandate.revoked else "EXPIRED" if now >= mandate.expires_at_ms else "ACTIVE"
    )
    remaining = max(0, mandate.amount_total_minor - spent_minor)
    limits_json = mandate.limits_json()
    return MandateView(
        mandate_id=mandate.mandate_id,
        tenant_id=mandate.tenant_id,
        kid=row.kid,
        agent_key_id=mandate.agent_key_id,
        limits=MandateLimits(
            currency=mandate.currency,
            amount_per_work=str(limits_json["amount_per_work"]),
            amount_total=str(limits_json["amount_total"]),
            categories=list(mandate.categories),
        ),
        description=mandate.description,
        issued_at_ms=mandate.issued_at_ms,
        expires_at_ms=mandate.expires_at_ms,
        state=state,
        spent=format_amount(Money(spent_minor, mandate.currency)),
        remaining=format_amount(Money(remaining, mandate.currency)),
        revoked_at_ms=None if row.revoked_at_ms is None else int(row.revoked_at_ms),
    )


def _claims(token: str) -> dict[str, object]:
    # The payload of a receipt this exchange signed (stored as signed): shown for convenience;
    # a verifier checks the token itself.
    raw = b64url_decode(token.split(".")[1])
    assert raw is not None
    claims: dict[str, object] = json.loads(raw)
    return claims
