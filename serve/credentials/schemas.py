"""Wire shapes of the AP2 mandate routes (issue 15 item 2, docs/payments.md "AP2 mandates")."""

from __future__ import annotations

from typing import Annotated

import msgspec

from aex.core import limits
from serve.certauth.schemas import PublicJwk
from serve.gateway.schemas import Strict

_Token = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.mandate_token_chars_max)]


class MandateKeyCreate(Strict, frozen=True):
    """POST /v1/mandates/keys: the public key (P-256 JWK) the tenant's user signs mandates with."""

    public_key_jwk: PublicJwk


class MandateKeyView(msgspec.Struct, frozen=True):
    tenant_id: str
    kid: str


class MandateCreate(Strict, frozen=True):
    """POST /v1/mandates: the intent mandate as the user signed it (compact JWS, ES256); the
    key may be registered in the same request (`public_key_jwk`)."""

    mandate: _Token
    public_key_jwk: PublicJwk | None = None


class MandateLimits(msgspec.Struct, frozen=True):
    currency: str
    amount_per_work: str
    amount_total: str
    categories: list[str]


class MandateView(msgspec.Struct, frozen=True):
    """A registered intent mandate; `state` ACTIVE, EXPIRED or REVOKED; `spent` what its open
    work (budget max) and live contracts (price) take of `amount_total`."""

    mandate_id: str
    tenant_id: str
    kid: str
    agent_key_id: str | None
    limits: MandateLimits
    description: str
    issued_at_ms: int
    expires_at_ms: int
    state: str
    spent: str
    remaining: str
    revoked_at_ms: int | None = None


class ReceiptView(msgspec.Struct, frozen=True):
    """A receipt signed by the exchange's CA key (compact JWS, ES256, typ aex-receipt+jwt):
    `checkout` at award, `payment` at settlement; `claims` is its decoded payload."""

    receipt_id: str
    kind: str
    contract_id: str
    mandate_id: str
    issued_at_ms: int
    token: str
    claims: dict[str, object]


class ReceiptList(msgspec.Struct, frozen=True):
    contract_id: str
    receipts: list[ReceiptView]
