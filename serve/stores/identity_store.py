"""Tenants, their API keys and the credentials epoch: the KeyStore's identity half, written
once for SQLite and PostgreSQL (serve/stores/sql.py).

Every revocation, suspension or plan change bumps `credentials_epoch` in the transaction that
made it; each worker compares the epoch on every request and drops its whole key cache when it
moved, so a revocation in one process is refused by every other at once. Only a change that
happened moves it: an unknown or already revoked key would otherwise drop every worker's key
cache for free (issue 11, item 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aex.core import Plan
from serve.stores.base import CredentialMatch, KeyRecord, Page, TenantRecord
from serve.stores.pages import Keyset
from serve.stores.sql import Sql, SqlStore

_TENANT_SELECT = "SELECT tenant_id, name, type, plan, status, created_at_ms FROM tenants"
_KEY_SELECT = (
    "SELECT key_id, tenant_id, kind, digest, prefix, created_at_ms, provider_id, revoked_at_ms"
    " FROM api_keys"
)
# A key and its tenant in one row: the tenant's own time column renamed.
_CREDENTIAL_SELECT = (
    "SELECT k.key_id, k.tenant_id, k.kind, k.digest, k.prefix, k.created_at_ms,"
    " k.provider_id, k.revoked_at_ms, t.name, t.type, t.plan, t.status,"
    " t.created_at_ms AS tenant_created_at_ms"
    " FROM api_keys k JOIN tenants t ON t.tenant_id = k.tenant_id WHERE k.digest = ?"
)
_PAID_TERM_SELECT = "SELECT plan, agents, ends_at_ms FROM plan_subscriptions WHERE tenant_id = ?"
_TENANTS_KEYSET = Keyset("tenants", "created_at_ms", "tenant_id")
_KEYS_KEYSET = Keyset("api_keys", "created_at_ms", "key_id")


def tenant_record(row: Any, *, created: str = "created_at_ms") -> TenantRecord:
    return TenantRecord(
        tenant_id=row["tenant_id"],
        name=row["name"],
        type=row["type"],
        plan=Plan(row["plan"]),
        status=row["status"],
        created_at_ms=int(row[created]),
    )


def key_record(row: Any) -> KeyRecord:
    return KeyRecord(
        key_id=row["key_id"],
        tenant_id=row["tenant_id"],
        kind=row["kind"],
        digest=row["digest"],
        prefix=row["prefix"],
        created_at_ms=int(row["created_at_ms"]),
        provider_id=row["provider_id"],
        revoked_at_ms=None if row["revoked_at_ms"] is None else int(row["revoked_at_ms"]),
    )


def insert_key(tx: Sql, key: KeyRecord) -> None:
    tx.execute(
        "INSERT INTO api_keys (key_id, tenant_id, kind, digest, prefix, created_at_ms,"
        " provider_id, revoked_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key.key_id,
            key.tenant_id,
            key.kind,
            key.digest,
            key.prefix,
            key.created_at_ms,
            key.provider_id,
            key.revoked_at_ms,
        ),
    )


class IdentityStore(SqlStore):
    """KeyStore: tenants, keys, credentials (see serve/stores/base.py)."""

    def create_tenant(self, tenant: TenantRecord, key: KeyRecord) -> None:
        with self._write() as tx:
            tx.execute(
                "INSERT INTO tenants (tenant_id, name, type, plan, status, created_at_ms)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    tenant.tenant_id,
                    tenant.name,
                    tenant.type,
                    tenant.plan.value,
                    tenant.status,
                    tenant.created_at_ms,
                ),
            )
            insert_key(tx, key)

    def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        found = self._one(_TENANT_SELECT + " WHERE tenant_id = ?", (tenant_id,))
        return None if found is None else tenant_record(found)

    def page_tenants(self, *, limit: int, starting_after: str | None) -> Page[TenantRecord] | None:
        return self._page(
            _TENANTS_KEYSET,
            _TENANT_SELECT,
            ("1 = 1", ()),
            tenant_record,
            limit=limit,
            starting_after=starting_after,
        )

    def set_tenant_status(self, tenant_id: str, status: str) -> TenantRecord | None:
        return self._set_tenant("status", tenant_id, status)

    def set_tenant_plan(self, tenant_id: str, plan: Plan) -> TenantRecord | None:
        return self._set_tenant("plan", tenant_id, plan.value)

    def _set_tenant(self, column: str, tenant_id: str, value: str) -> TenantRecord | None:
        assert column in {"status", "plan"}, column
        with self._write() as tx:
            changed = tx.execute(
                f"UPDATE tenants SET {column} = ? WHERE tenant_id = ? AND {column} <> ?",  # noqa: S608
                (value, tenant_id, value),
            )
            if changed.rowcount == 1:  # an unknown tenant or no change: no epoch bump
                self._bump_epoch(tx)
        return self.get_tenant(tenant_id)

    def add_key(self, key: KeyRecord) -> None:
        with self._write() as tx:
            insert_key(tx, key)

    def list_keys(self, tenant_id: str) -> Sequence[KeyRecord]:
        rows = self._all(
            _KEY_SELECT + " WHERE tenant_id = ? ORDER BY created_at_ms, key_id", (tenant_id,)
        )
        return [key_record(row) for row in rows]

    def page_keys(
        self, tenant_id: str, *, limit: int, starting_after: str | None
    ) -> Page[KeyRecord] | None:
        return self._page(
            _KEYS_KEYSET,
            _KEY_SELECT,
            ("tenant_id = ?", (tenant_id,)),
            key_record,
            limit=limit,
            starting_after=starting_after,
        )

    def revoke_key(self, tenant_id: str, key_id: str, *, now_ms: int) -> KeyRecord | None:
        with self._write() as tx:
            self._revoke(tx, tenant_id, key_id, now_ms)
            row = tx.execute(
                _KEY_SELECT + " WHERE key_id = ? AND tenant_id = ?", (key_id, tenant_id)
            ).fetchone()
        return None if row is None else key_record(row)

    def rotate_key(
        self, tenant_id: str, key_id: str, new_key: KeyRecord, *, now_ms: int
    ) -> KeyRecord | None:
        with self._write() as tx:
            if not self._revoke(tx, tenant_id, key_id, now_ms):
                return None
            insert_key(tx, new_key)
        return new_key

    def find_credential(self, digest: str) -> CredentialMatch | None:
        row = self._one(_CREDENTIAL_SELECT, (digest,))
        if row is None:
            return None
        return CredentialMatch(
            key=key_record(row), tenant=tenant_record(row, created="tenant_created_at_ms")
        )

    def paid_term(self, tenant_id: str) -> tuple[str, int, int] | None:
        row = self._one(_PAID_TERM_SELECT, (tenant_id,))
        return (
            None if row is None else (str(row["plan"]), int(row["agents"]), int(row["ends_at_ms"]))
        )

    def credentials_epoch(self) -> int:
        return int(self._one("SELECT epoch FROM credentials_epoch")["epoch"])

    def _revoke(self, tx: Sql, tenant_id: str, key_id: str, now_ms: int) -> bool:
        cursor = tx.execute(
            "UPDATE api_keys SET revoked_at_ms = ? WHERE key_id = ? AND tenant_id = ?"
            " AND revoked_at_ms IS NULL",
            (now_ms, key_id, tenant_id),
        )
        if cursor.rowcount != 1:
            return False
        self._bump_epoch(tx)
        return True

    def _bump_epoch(self, tx: Sql) -> None:
        tx.execute("UPDATE credentials_epoch SET epoch = epoch + 1")
        self._epoch_moved()
