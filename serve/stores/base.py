"""The store protocols: what the gateway and the routes need from persistence.

Three concerns, three protocols (STYLE.md 16), each with contract tests in tests/serve/stores
run against every backend through the `store` fixture of tests/conftest.py:

- `KeyStore`: tenants, their API keys, providers with their key and secret, subscriptions.
  Only SHA-256 digests of credentials are stored.
- `LedgerStore`: wallets (balances, holds, journal entries, postings) and the operation
  records that make money movements idempotent; one transaction per operation.
- `IdempotencyStore`: the stored responses behind `Idempotency-Key` on any POST.
- `RateLimitStore` and `KeyCache`: per-process here (GCRA, TTL cache), Redis later; the Redis
  rate limiter fails open.

Records crossing these protocols are frozen msgspec Structs (they are also the JSON shapes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import msgspec

from aex.core import Plan, QuotaRejectReason, Rejected
from aex.core.ledger import Applied, Operation, Wallet
from aex.core.reasons import LedgerRejectReason


class TenantRecord(msgspec.Struct, frozen=True):
    tenant_id: str
    name: str
    type: str
    plan: Plan
    status: str  # ACTIVE | SUSPENDED
    created_at_ms: int


class KeyRecord(msgspec.Struct, frozen=True):
    key_id: str
    tenant_id: str
    kind: str  # TENANT | PROVIDER
    digest: str
    prefix: str  # the first characters, for display: never enough to authenticate
    created_at_ms: int
    provider_id: str | None = None
    revoked_at_ms: int | None = None


class ProviderRecord(msgspec.Struct, frozen=True):
    provider_id: str
    tenant_id: str
    name: str
    type: str
    capabilities: tuple[str, ...]
    category: str
    endpoint: str | None
    created_at_ms: int
    updated_at_ms: int


class SubscriptionRecord(msgspec.Struct, frozen=True):
    subscription_id: str
    provider_id: str
    tenant_id: str
    categories: tuple[str, ...]
    capabilities: tuple[str, ...]
    created_at_ms: int


class CredentialMatch(msgspec.Struct, frozen=True):
    key: KeyRecord
    tenant: TenantRecord


class StoredResponse(msgspec.Struct, frozen=True):
    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """The answer to a claim: proceed (claimed), replay a stored response, or refuse."""

    outcome: str  # CLAIMED | REPLAY | MISMATCH | IN_FLIGHT
    response: StoredResponse | None = None


class HistoryRow(msgspec.Struct, frozen=True):
    """One journal entry as it moved one wallet (signed minor units per bucket)."""

    entry_id: int
    operation_id: str
    kind: str
    available_change_minor: int
    held_change_minor: int
    currency: str
    created_at_ms: int
    credit_change_minor: int = 0  # the token bank's credit bucket


R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    """One page of a list, newest first (created time, then id): `has_more` when the next
    page, after the last record's id, is not empty."""

    records: tuple[R, ...]
    has_more: bool


AgentsCheck = Callable[[int], Rejected[QuotaRejectReason] | None]


class KeyStore(Protocol):
    def create_tenant(self, tenant: TenantRecord, key: KeyRecord) -> None: ...
    def get_tenant(self, tenant_id: str) -> TenantRecord | None: ...
    # The page_* lists: newest first; None when `starting_after` names none of the rows listed.
    def page_tenants(
        self, *, limit: int, starting_after: str | None
    ) -> Page[TenantRecord] | None: ...
    def set_tenant_status(self, tenant_id: str, status: str) -> TenantRecord | None: ...
    def set_tenant_plan(self, tenant_id: str, plan: Plan) -> TenantRecord | None: ...
    def add_key(self, key: KeyRecord) -> None: ...
    def list_keys(self, tenant_id: str) -> Sequence[KeyRecord]: ...
    def page_keys(
        self, tenant_id: str, *, limit: int, starting_after: str | None
    ) -> Page[KeyRecord] | None: ...
    def revoke_key(self, tenant_id: str, key_id: str, *, now_ms: int) -> KeyRecord | None: ...
    def rotate_key(
        self, tenant_id: str, key_id: str, new_key: KeyRecord, *, now_ms: int
    ) -> KeyRecord | None: ...
    def find_credential(self, digest: str) -> CredentialMatch | None: ...
    def credentials_epoch(self) -> int: ...
    def paid_term(self, tenant_id: str) -> tuple[str, int, int] | None:
        """The tenant's plan term (plan, agents, ends_at_ms) from `plan_subscriptions`."""
        ...

    def create_provider(
        self,
        provider: ProviderRecord,
        key: KeyRecord,
        secret_digest: str,
        *,
        check_agents: AgentsCheck,
        webhook_secret_sealed: str | None = None,
    ) -> Rejected[QuotaRejectReason] | None:
        """`secret_digest`: SHA-256 of the api secret (one-way); `webhook_secret_sealed`: the
        webhook signing secret sealed by serve/secret_box.py (never the secret itself)."""
        ...

    def set_webhook_secret(self, tenant_id: str, provider_id: str, sealed: str) -> bool:
        """Replaces the provider's sealed webhook secret; False when it is not the tenant's."""
        ...

    def get_provider(self, provider_id: str) -> ProviderRecord | None: ...
    def page_providers(
        self, tenant_id: str, provider_id: str | None, *, limit: int, starting_after: str | None
    ) -> Page[ProviderRecord] | None: ...
    def update_provider(self, provider: ProviderRecord) -> None: ...
    def create_subscription(
        self, subscription: SubscriptionRecord, *, check_subscriptions: AgentsCheck
    ) -> Rejected[QuotaRejectReason] | None: ...
    def page_subscriptions(
        self, tenant_id: str, provider_id: str | None, *, limit: int, starting_after: str | None
    ) -> Page[SubscriptionRecord] | None: ...
    def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None: ...
    def delete_subscription(self, subscription_id: str) -> bool: ...


class LedgerStore(Protocol):
    """Drives aex/core/ledger.py: one operation, one transaction; replays write nothing."""

    def apply(self, operation: Operation) -> Applied | Rejected[LedgerRejectReason]: ...
    async def submit(self, operation: Operation) -> Applied | Rejected[LedgerRejectReason]: ...
    def wallet(self, wallet_id: str) -> Wallet | None: ...
    def has_entry(self, wallet_id: str, entry_id: int) -> bool: ...
    # Newest first; with `before_entry_id`, only the entries older than that one.
    def history(
        self, wallet_id: str, *, limit: int, before_entry_id: int | None = None
    ) -> Sequence[HistoryRow]: ...
    def totals_by_currency(self) -> dict[str, int]: ...
    def wallet_mismatches(self) -> list[str]: ...


class IdempotencyStore(Protocol):
    # A record older than ttl_ms (from its first request) is expired: the key starts afresh.
    def claim(
        self,
        scope: str,
        key: str,
        request_digest: str,
        *,
        now_ms: int,
        stale_after_ms: int,
        ttl_ms: int,
    ) -> IdempotencyClaim: ...
    def complete(self, scope: str, key: str, response: StoredResponse, *, now_ms: int) -> None: ...
    def release(self, scope: str, key: str) -> None: ...
    def prune_idempotency(self, *, before_ms: int, limit: int) -> int: ...


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_epoch_s: int
    retry_after_s: int


class RateLimitStore(Protocol):
    def acquire(
        self, bucket: str, *, per_minute: int, burst: int, now_s: float
    ) -> RateDecision: ...
    def count_today(self, bucket: str, *, day: int) -> int: ...


class KeyCache(Protocol):
    """Validated credentials by digest; `clear` on any revocation makes it effective at once."""

    def get(self, digest: str, *, now_s: float) -> CredentialMatch | None: ...
    def put(self, digest: str, match: CredentialMatch, *, now_s: float) -> None: ...
    def clear(self) -> None: ...
