"""Providers and their work subscriptions: the KeyStore's registry half, written once for
SQLite and PostgreSQL (serve/stores/sql.py).

A count and the insert it guards ("max agents", the plan's subscriptions) share one write
transaction, whose first read locks the row the count belongs to (`for_update`: the tenant's
row for its providers, the provider's row for its subscriptions). On PostgreSQL that row lock
serialises concurrent processes; SQLite serialises every writer already. Either way two
concurrent registrations cannot both pass the last free slot.
"""

from __future__ import annotations

import json
from typing import Any

from aex.core import QuotaRejectReason, Rejected
from serve.stores.base import AgentsCheck, KeyRecord, Page, ProviderRecord, SubscriptionRecord
from serve.stores.identity_store import insert_key
from serve.stores.pages import Keyset
from serve.stores.sql import SqlStore

_PROVIDER_SELECT = (
    "SELECT provider_id, tenant_id, name, type, capabilities, category, endpoint,"
    " created_at_ms, updated_at_ms FROM providers"
)
_SUBSCRIPTION_SELECT = (
    "SELECT subscription_id, provider_id, tenant_id, categories, capabilities, created_at_ms"
    " FROM subscriptions"
)
# The row a count belongs to, locked (with `for_update`) before the count.
_LOCK_TENANT = "SELECT 1 AS locked FROM tenants WHERE tenant_id = ?"
_LOCK_PROVIDER = "SELECT 1 AS locked FROM providers WHERE provider_id = ?"
_PROVIDERS_KEYSET = Keyset("providers", "created_at_ms", "provider_id")
_SUBSCRIPTIONS_KEYSET = Keyset("subscriptions", "created_at_ms", "subscription_id")

SUBSCRIPTION_INDEX_INSERT = (
    "INSERT INTO subscription_categories VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


def subscription_index_rows(s: SubscriptionRecord) -> list[tuple[int, str, str, str]]:
    # One row per category pattern (serve/stores/market_schema.py, migration 7): a literal,
    # or the prefix before a trailing "*".
    return [
        (1, p[:-1], s.subscription_id, s.provider_id)
        if p.endswith("*")
        else (0, p, s.subscription_id, s.provider_id)
        for p in dict.fromkeys(s.categories)
    ]


def provider_record(row: Any) -> ProviderRecord:
    return ProviderRecord(
        provider_id=row["provider_id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        type=row["type"],
        capabilities=tuple(json.loads(row["capabilities"])),
        category=row["category"],
        endpoint=row["endpoint"],
        created_at_ms=int(row["created_at_ms"]),
        updated_at_ms=int(row["updated_at_ms"]),
    )


def subscription_record(row: Any) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=row["subscription_id"],
        provider_id=row["provider_id"],
        tenant_id=row["tenant_id"],
        categories=tuple(json.loads(row["categories"])),
        capabilities=tuple(json.loads(row["capabilities"])),
        created_at_ms=int(row["created_at_ms"]),
    )


class RegistryStore(SqlStore):
    """KeyStore: providers and subscriptions (see serve/stores/base.py)."""

    def create_provider(
        self,
        provider: ProviderRecord,
        key: KeyRecord,
        secret_digest: str,
        *,
        check_agents: AgentsCheck,
        webhook_secret_sealed: str | None = None,
    ) -> Rejected[QuotaRejectReason] | None:
        with self._write() as tx:
            tx.execute(
                _LOCK_TENANT + self.for_update,
                (provider.tenant_id,),
            )
            count = tx.execute(
                "SELECT count(*) AS providers FROM providers WHERE tenant_id = ?",
                (provider.tenant_id,),
            ).fetchone()["providers"]
            rejected = check_agents(int(count))
            if rejected is not None:
                return rejected
            tx.execute(
                "INSERT INTO providers (provider_id, tenant_id, name, type, capabilities,"
                " category, endpoint, created_at_ms, updated_at_ms, secret_digest,"
                " webhook_secret_sealed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    provider.provider_id,
                    provider.tenant_id,
                    provider.name,
                    provider.type,
                    json.dumps(list(provider.capabilities)),
                    provider.category,
                    provider.endpoint,
                    provider.created_at_ms,
                    provider.updated_at_ms,
                    secret_digest,
                    webhook_secret_sealed,
                ),
            )
            insert_key(tx, key)
        return None

    def get_provider(self, provider_id: str) -> ProviderRecord | None:
        found = self._one(_PROVIDER_SELECT + " WHERE provider_id = ?", (provider_id,))
        return None if found is None else provider_record(found)

    def page_providers(
        self, tenant_id: str, provider_id: str | None, *, limit: int, starting_after: str | None
    ) -> Page[ProviderRecord] | None:
        return self._page(
            _PROVIDERS_KEYSET,
            _PROVIDER_SELECT,
            _providers_of(tenant_id, provider_id),
            provider_record,
            limit=limit,
            starting_after=starting_after,
        )

    def update_provider(self, provider: ProviderRecord) -> None:
        with self._write() as tx:
            tx.execute(
                "UPDATE providers SET name = ?, capabilities = ?, category = ?, endpoint = ?,"
                " updated_at_ms = ? WHERE provider_id = ? AND tenant_id = ?",
                (
                    provider.name,
                    json.dumps(list(provider.capabilities)),
                    provider.category,
                    provider.endpoint,
                    provider.updated_at_ms,
                    provider.provider_id,
                    provider.tenant_id,
                ),
            )

    def set_webhook_secret(self, tenant_id: str, provider_id: str, sealed: str) -> bool:
        with self._write() as tx:
            cursor = tx.execute(
                "UPDATE providers SET webhook_secret_sealed = ? WHERE provider_id = ?"
                " AND tenant_id = ?",
                (sealed, provider_id, tenant_id),
            )
            return cursor.rowcount == 1

    def create_subscription(
        self, subscription: SubscriptionRecord, *, check_subscriptions: AgentsCheck
    ) -> Rejected[QuotaRejectReason] | None:
        with self._write() as tx:
            tx.execute(
                _LOCK_PROVIDER + self.for_update,
                (subscription.provider_id,),
            )
            count = tx.execute(
                "SELECT count(*) AS subscriptions FROM subscriptions WHERE provider_id = ?",
                (subscription.provider_id,),
            ).fetchone()["subscriptions"]
            rejected = check_subscriptions(int(count))
            if rejected is not None:
                return rejected
            tx.execute(
                "INSERT INTO subscriptions (subscription_id, provider_id, tenant_id, categories,"
                " capabilities, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    subscription.subscription_id,
                    subscription.provider_id,
                    subscription.tenant_id,
                    json.dumps(list(subscription.categories)),
                    json.dumps(list(subscription.capabilities)),
                    subscription.created_at_ms,
                ),
            )
            tx.executemany(SUBSCRIPTION_INDEX_INSERT, subscription_index_rows(subscription))
        return None

    def page_subscriptions(
        self, tenant_id: str, provider_id: str | None, *, limit: int, starting_after: str | None
    ) -> Page[SubscriptionRecord] | None:
        return self._page(
            _SUBSCRIPTIONS_KEYSET,
            _SUBSCRIPTION_SELECT,
            _subscriptions_of(tenant_id, provider_id),
            subscription_record,
            limit=limit,
            starting_after=starting_after,
        )

    def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        found = self._one(_SUBSCRIPTION_SELECT + " WHERE subscription_id = ?", (subscription_id,))
        return None if found is None else subscription_record(found)

    def delete_subscription(self, subscription_id: str) -> bool:
        with self._write() as tx:
            tx.execute(
                "DELETE FROM subscription_categories WHERE subscription_id = ?",
                (subscription_id,),
            )
            cursor = tx.execute(
                "DELETE FROM subscriptions WHERE subscription_id = ?", (subscription_id,)
            )
            return cursor.rowcount == 1


def _subscriptions_of(tenant_id: str, provider_id: str | None) -> tuple[str, tuple[str, ...]]:
    # A provider key sees its own provider's subscriptions; a tenant key all of its providers'.
    if provider_id is None:
        return "tenant_id = ?", (tenant_id,)
    return "tenant_id = ? AND provider_id = ?", (tenant_id, provider_id)


def _providers_of(tenant_id: str, provider_id: str | None) -> tuple[str, tuple[str, ...]]:
    # A provider key sees its own provider only; a tenant key all of its providers.
    if provider_id is None:
        return "tenant_id = ?", (tenant_id,)
    return "tenant_id = ? AND provider_id = ?", (tenant_id, provider_id)
