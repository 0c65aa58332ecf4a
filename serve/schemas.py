"""Wire shapes: msgspec Structs decoded strictly (unknown fields refused, no type coercion).

Money amounts arrive as JSON numbers or strings and are decoded as `Decimal` from the literal
the client sent (never through a float), then parsed exactly by `aex.core.parse_money`; they
leave as decimal strings ("100.10").
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

import msgspec

from aex.core import SCOPES_PER_TOKEN_MAX, Plan

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")]
Pattern = Annotated[
    str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^(\*|[A-Za-z0-9_.\-]+\*?)$")
]
Endpoint = Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^https?://")]
Currency = Annotated[str, msgspec.Meta(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")]
Identifier = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z]+_[0-9a-f]+$")
]


class TenantType(StrEnum):
    CONSUMER = "CONSUMER"
    PROVIDER = "PROVIDER"
    BOTH = "BOTH"


class Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Request bodies: unknown fields refused."""

    pass


class TenantCreate(Strict, frozen=True):
    name: Name
    type: TenantType


class TenantView(msgspec.Struct, frozen=True):
    tenant_id: str
    name: str
    type: str
    plan: Plan
    status: str
    created_at_ms: int


class TenantCreated(msgspec.Struct, frozen=True):
    tenant_id: str
    name: str
    type: str
    plan: Plan
    status: str
    key_id: str
    api_key: str


class PlanChange(Strict, frozen=True):
    plan: Plan


class KeyView(msgspec.Struct, frozen=True):
    key_id: str
    kind: str
    prefix: str
    created_at_ms: int
    revoked_at_ms: int | None
    provider_id: str | None


class KeyCreated(msgspec.Struct, frozen=True):
    key_id: str
    prefix: str
    created_at_ms: int
    api_key: str
    replaces_key_id: str | None = None


# A scope name (aex/core/credentials.py AccessScope) or "*": every scope the minting
# credential holds. Unknown names are refused by the core, naming the field.
ScopeName = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^(\*|[a-z]+)$")]


class TokenCreate(Strict, frozen=True):
    scopes: Annotated[list[ScopeName], msgspec.Meta(max_length=SCOPES_PER_TOKEN_MAX)] = (
        msgspec.field(default_factory=lambda: ["*"])
    )
    ttl_s: Annotated[int, msgspec.Meta(ge=60, le=86_400)] = 3_600


class TokenCreated(msgspec.Struct, frozen=True):
    token: str
    token_type: str
    expires_in_s: int
    scopes: list[str] = msgspec.field(default_factory=list)  # what was granted ("*" expanded)


class ProviderCreate(Strict, frozen=True):
    name: Name
    type: Literal["AI_AGENT"]
    capabilities: Annotated[list[Label], msgspec.Meta(min_length=1, max_length=100)]
    category: Label
    endpoint: Endpoint | None = None


class ProviderUpdate(Strict, frozen=True):
    name: Name | None = None
    capabilities: Annotated[list[Label], msgspec.Meta(min_length=1, max_length=100)] | None = None
    category: Label | None = None
    endpoint: Endpoint | None = None


class ProviderView(msgspec.Struct, frozen=True):
    provider_id: str
    tenant_id: str
    name: str
    type: str
    capabilities: tuple[str, ...]
    category: str
    endpoint: str | None
    created_at_ms: int
    updated_at_ms: int


class ProviderCreated(msgspec.Struct, frozen=True):
    provider_id: str
    name: str
    api_key: str
    api_secret: str
    webhook_secret: str


class WebhookSecretCreated(msgspec.Struct, frozen=True):
    provider_id: str
    webhook_secret: str


class SubscriptionCreate(Strict, frozen=True):
    provider_id: Identifier
    categories: Annotated[list[Pattern], msgspec.Meta(min_length=1, max_length=50)]
    capabilities: Annotated[list[Pattern], msgspec.Meta(max_length=100)] = msgspec.field(
        default_factory=list
    )


class SubscriptionView(msgspec.Struct, frozen=True):
    subscription_id: str
    provider_id: str
    categories: tuple[str, ...]
    capabilities: tuple[str, ...]
    created_at_ms: int


class DepositCreate(Strict, frozen=True):
    tenant_id: Identifier
    amount: Decimal
    currency: Currency


class WithdrawalCreate(Strict, frozen=True):
    tenant_id: Identifier
    amount: Decimal
    currency: Currency


class BalanceView(msgspec.Struct, frozen=True):
    tenant_id: str
    currency: str
    available: str
    held: str


class MoneyMovement(msgspec.Struct, frozen=True):
    operation_id: str
    kind: str
    tenant_id: str
    amount: str
    currency: str
    replayed: bool
    balance: BalanceView


class TransactionView(msgspec.Struct, frozen=True):
    """One journal entry as it moved the caller's wallet (signed decimal strings)."""

    entry_id: int
    operation_id: str
    kind: str
    available_change: str
    held_change: str
    currency: str
    created_at_ms: int
