"""The embedded store: one SQLite file in WAL mode, migrations applied on start.

Every write is one `BEGIN IMMEDIATE` transaction (the write lock is taken up front, so two
writers never deadlock upgrading a read lock); reads run outside transactions on WAL
snapshots. One connection per thread: handlers run in the worker thread pool. With
`synchronous=FULL` (the default) a COMMIT returns only once the WAL is on disk, so an
acknowledged write survives a `kill -9` and a power cut.

The database, its `-wal` and `-shm` files and the `.epoch` map are readable by the owner only
(0600): the main file is created with that mode before SQLite opens it (SQLite gives the WAL
and shared-memory files the main file's mode), and files made by an older version are
chmod-ed at open. `secure_delete` overwrites deleted rows, so nothing deleted stays readable
in free pages.
"""

from __future__ import annotations

import json
import mmap
import os
import sqlite3
import struct
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from aex.core import Plan, QuotaRejectReason, Rejected
from serve.stores.base import (
    AgentsCheck,
    CredentialMatch,
    IdempotencyClaim,
    KeyRecord,
    ProviderRecord,
    StoredResponse,
    SubscriptionRecord,
    TenantRecord,
)
from serve.stores.migrations import MIGRATIONS


class SqliteStore:
    """KeyStore + IdempotencyStore (+ LedgerStore, see serve/settlement/sqlite_ledger.py)."""

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        assert synchronous in {"FULL", "NORMAL", "EXTRA"}
        self.path = path
        self._synchronous = synchronous
        self._local = threading.local()
        secure_database_files(path)
        self.migrate()
        self._epoch_map = _open_epoch_map(path.with_name(path.name + ".epoch"))
        self._publish_epoch()

    # -- plumbing ---------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self.open_connection()
            self._local.connection = connection
        return connection

    def open_connection(self, *, check_same_thread: bool = True) -> sqlite3.Connection:
        """A new connection in autocommit mode (transactions are explicit), WAL, FULL sync."""
        connection = sqlite3.connect(
            self.path, isolation_level=None, timeout=30.0, check_same_thread=check_same_thread
        )
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {self._synchronous}")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA secure_delete = ON")
        connection.execute("PRAGMA busy_timeout = 30000")
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; any exception (an assert too) rolls everything back."""
        connection = self.connection()
        connection.execute("BEGIN IMMEDIATE")
        _THREAD_FLAGS.epoch_bumped = False
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        if _THREAD_FLAGS.epoch_bumped:
            self._publish_epoch()

    def _publish_epoch(self) -> None:
        # After the COMMIT: the shared map follows the table (the source of truth).
        row = self.connection().execute("SELECT epoch FROM credentials_epoch").fetchone()
        struct.pack_into("<q", self._epoch_map, 0, int(row[0]))

    def migrate(self) -> int:
        with self.transaction() as tx:
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            )
            current = tx.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
            version = int(current[0])
            for number, script in MIGRATIONS:
                if number <= version:
                    continue
                for statement in script.split(";"):
                    if statement.strip():
                        tx.execute(statement)
                tx.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
                version = number
        return version

    def schema_version(self) -> int:
        row = self.connection().execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0])

    # -- tenants and keys -------------------------------------------------------------------

    def create_tenant(self, tenant: TenantRecord, key: KeyRecord) -> None:
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO tenants VALUES (?, ?, ?, ?, ?, ?)",
                (
                    tenant.tenant_id,
                    tenant.name,
                    tenant.type,
                    tenant.plan.value,
                    tenant.status,
                    tenant.created_at_ms,
                ),
            )
            _insert_key(tx, key)

    def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        row = self.connection().execute(_TENANT_SELECT + " WHERE tenant_id = ?", (tenant_id,))
        found = row.fetchone()
        return None if found is None else _tenant(found)

    def list_tenants(self, *, limit: int) -> Sequence[TenantRecord]:
        rows = self.connection().execute(
            _TENANT_SELECT + " ORDER BY created_at_ms, tenant_id LIMIT ?", (limit,)
        )
        return [_tenant(row) for row in rows]

    def set_tenant_status(self, tenant_id: str, status: str) -> TenantRecord | None:
        with self.transaction() as tx:
            changed = tx.execute(
                "UPDATE tenants SET status = ? WHERE tenant_id = ? AND status <> ?",
                (status, tenant_id, status),
            )
            if changed.rowcount == 1:  # an unknown tenant or no change: no epoch bump
                _bump_epoch(tx)
        return self.get_tenant(tenant_id)

    def set_tenant_plan(self, tenant_id: str, plan: Plan) -> TenantRecord | None:
        with self.transaction() as tx:
            changed = tx.execute(
                "UPDATE tenants SET plan = ? WHERE tenant_id = ? AND plan <> ?",
                (plan.value, tenant_id, plan.value),
            )
            if changed.rowcount == 1:  # an unknown tenant or no change: no epoch bump
                _bump_epoch(tx)
        return self.get_tenant(tenant_id)

    def add_key(self, key: KeyRecord) -> None:
        with self.transaction() as tx:
            _insert_key(tx, key)

    def list_keys(self, tenant_id: str) -> Sequence[KeyRecord]:
        rows = self.connection().execute(
            _KEY_SELECT + " WHERE tenant_id = ? ORDER BY created_at_ms, key_id", (tenant_id,)
        )
        return [_key(row) for row in rows]

    def revoke_key(self, tenant_id: str, key_id: str, *, now_ms: int) -> KeyRecord | None:
        with self.transaction() as tx:
            _revoke(tx, tenant_id, key_id, now_ms)
            row = tx.execute(
                _KEY_SELECT + " WHERE key_id = ? AND tenant_id = ?", (key_id, tenant_id)
            ).fetchone()
        return None if row is None else _key(row)

    def rotate_key(
        self, tenant_id: str, key_id: str, new_key: KeyRecord, *, now_ms: int
    ) -> KeyRecord | None:
        with self.transaction() as tx:
            if not _revoke(tx, tenant_id, key_id, now_ms):
                return None
            _insert_key(tx, new_key)
        return new_key

    def find_credential(self, digest: str) -> CredentialMatch | None:
        row = (
            self.connection()
            .execute(
                "SELECT k.key_id, k.tenant_id, k.kind, k.digest, k.prefix, k.created_at_ms,"
                " k.provider_id, k.revoked_at_ms, t.tenant_id, t.name, t.type, t.plan, t.status,"
                " t.created_at_ms FROM api_keys k JOIN tenants t USING (tenant_id)"
                " WHERE k.digest = ?",
                (digest,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return CredentialMatch(key=_key(row[:8]), tenant=_tenant(row[8:]))

    def paid_term(self, tenant_id: str) -> tuple[str, int, int] | None:
        row = self.connection().execute(_PAID_TERM_SELECT, (tenant_id,)).fetchone()
        return None if row is None else (str(row[0]), int(row[1]), int(row[2]))

    def credentials_epoch(self) -> int:
        """Read from a shared memory map of `<db>.epoch` (every worker maps the same file): a
        memory read, no syscall, so the per-request check costs nothing even while the ledger
        writer thread holds the GIL."""
        return int(struct.unpack_from("<q", self._epoch_map, 0)[0])

    # -- providers and subscriptions ---------------------------------------------------------

    def create_provider(
        self,
        provider: ProviderRecord,
        key: KeyRecord,
        secret_digest: str,
        *,
        check_agents: AgentsCheck,
        webhook_secret_sealed: str | None = None,
    ) -> Rejected[QuotaRejectReason] | None:
        # The count and the insert share one write transaction: two concurrent registrations
        # cannot both pass a "max agents" of 1.
        with self.transaction() as tx:
            count = tx.execute(
                "SELECT count(*) FROM providers WHERE tenant_id = ?", (provider.tenant_id,)
            ).fetchone()[0]
            rejected = check_agents(int(count))
            if rejected is not None:
                return rejected
            tx.execute(
                "INSERT INTO providers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *_provider_row(provider)[:7],
                    secret_digest,
                    *_provider_row(provider)[7:],
                    webhook_secret_sealed,
                ),
            )
            _insert_key(tx, key)
        return None

    def get_provider(self, provider_id: str) -> ProviderRecord | None:
        row = self.connection().execute(_PROVIDER_SELECT + " WHERE provider_id = ?", (provider_id,))
        found = row.fetchone()
        return None if found is None else _provider(found)

    def list_providers(self, tenant_id: str) -> Sequence[ProviderRecord]:
        rows = self.connection().execute(
            _PROVIDER_SELECT + " WHERE tenant_id = ? ORDER BY created_at_ms, provider_id",
            (tenant_id,),
        )
        return [_provider(row) for row in rows]

    def update_provider(self, provider: ProviderRecord) -> None:
        with self.transaction() as tx:
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
        with self.transaction() as tx:
            cursor = tx.execute(
                "UPDATE providers SET webhook_secret_sealed = ? WHERE provider_id = ?"
                " AND tenant_id = ?",
                (sealed, provider_id, tenant_id),
            )
            return cursor.rowcount == 1

    def create_subscription(
        self, subscription: SubscriptionRecord, *, check_subscriptions: AgentsCheck
    ) -> Rejected[QuotaRejectReason] | None:
        # The count and the insert share one write transaction (writers are serialised): two
        # concurrent subscriptions cannot both pass the plan's last free slot.
        with self.transaction() as tx:
            count = tx.execute(
                "SELECT count(*) FROM subscriptions WHERE provider_id = ?",
                (subscription.provider_id,),
            ).fetchone()[0]
            rejected = check_subscriptions(int(count))
            if rejected is not None:
                return rejected
            tx.execute(
                "INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?, ?)",
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

    def list_subscriptions(
        self, tenant_id: str, provider_id: str | None
    ) -> Sequence[SubscriptionRecord]:
        query = _SUBSCRIPTION_SELECT + " WHERE tenant_id = ?"
        parameters: tuple[str, ...] = (tenant_id,)
        if provider_id is not None:
            query += " AND provider_id = ?"
            parameters = (tenant_id, provider_id)
        rows = self.connection().execute(query + " ORDER BY created_at_ms", parameters)
        return [_subscription(row) for row in rows]

    def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        row = self.connection().execute(
            _SUBSCRIPTION_SELECT + " WHERE subscription_id = ?", (subscription_id,)
        )
        found = row.fetchone()
        return None if found is None else _subscription(found)

    def delete_subscription(self, subscription_id: str) -> bool:
        with self.transaction() as tx:
            tx.execute(
                "DELETE FROM subscription_categories WHERE subscription_id = ?",
                (subscription_id,),
            )
            cursor = tx.execute(
                "DELETE FROM subscriptions WHERE subscription_id = ?", (subscription_id,)
            )
            return cursor.rowcount == 1

    # -- idempotency --------------------------------------------------------------------------

    def claim(
        self,
        scope: str,
        key: str,
        request_digest: str,
        *,
        now_ms: int,
        stale_after_ms: int,
        ttl_ms: int,
    ) -> IdempotencyClaim:
        with self.transaction() as tx:
            row = tx.execute(
                "SELECT request_digest, status, body, content_type, created_at_ms"
                " FROM idempotency WHERE scope = ? AND key = ?",
                (scope, key),
            ).fetchone()
            if (
                row is None
                or now_ms - row[4] > ttl_ms
                or (row[1] is None and now_ms - row[4] > stale_after_ms)
            ):
                tx.execute(
                    "INSERT OR REPLACE INTO idempotency (scope, key, request_digest,"
                    " created_at_ms) VALUES (?, ?, ?, ?)",
                    (scope, key, request_digest, now_ms),
                )
                return IdempotencyClaim("CLAIMED")
        if row[0] != request_digest:
            return IdempotencyClaim("MISMATCH")
        if row[1] is None:
            return IdempotencyClaim("IN_FLIGHT")
        return IdempotencyClaim("REPLAY", StoredResponse(int(row[1]), bytes(row[2]), row[3]))

    def complete(self, scope: str, key: str, response: StoredResponse, *, now_ms: int) -> None:
        with self.transaction() as tx:
            tx.execute(
                "UPDATE idempotency SET status = ?, body = ?, content_type = ?"
                " WHERE scope = ? AND key = ?",
                (response.status, response.body, response.content_type, scope, key),
            )

    def release(self, scope: str, key: str) -> None:
        with self.transaction() as tx:
            tx.execute(
                "DELETE FROM idempotency WHERE scope = ? AND key = ? AND status IS NULL",
                (scope, key),
            )

    def prune_idempotency(self, *, before_ms: int, limit: int) -> int:
        with self.transaction() as tx:
            cursor = tx.execute(
                "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency"
                " WHERE created_at_ms < ? LIMIT ?)",
                (before_ms, limit),
            )
            return cursor.rowcount


_TENANT_SELECT = "SELECT tenant_id, name, type, plan, status, created_at_ms FROM tenants"
_KEY_SELECT = (
    "SELECT key_id, tenant_id, kind, digest, prefix, created_at_ms, provider_id, revoked_at_ms"
    " FROM api_keys"
)
_PROVIDER_SELECT = (
    "SELECT provider_id, tenant_id, name, type, capabilities, category, endpoint,"
    " created_at_ms, updated_at_ms FROM providers"
)
_SUBSCRIPTION_SELECT = (
    "SELECT subscription_id, provider_id, tenant_id, categories, capabilities, created_at_ms"
    " FROM subscriptions"
)


def _tenant(row: Sequence[Any]) -> TenantRecord:
    return TenantRecord(row[0], row[1], row[2], Plan(row[3]), row[4], row[5])


def _key(row: Sequence[Any]) -> KeyRecord:
    return KeyRecord(
        key_id=row[0],
        tenant_id=row[1],
        kind=row[2],
        digest=row[3],
        prefix=row[4],
        created_at_ms=row[5],
        provider_id=row[6],
        revoked_at_ms=row[7],
    )


def _provider(row: Sequence[Any]) -> ProviderRecord:
    return ProviderRecord(
        provider_id=row[0],
        tenant_id=row[1],
        name=row[2],
        type=row[3],
        capabilities=tuple(json.loads(row[4])),
        category=row[5],
        endpoint=row[6],
        created_at_ms=row[7],
        updated_at_ms=row[8],
    )


def _provider_row(provider: ProviderRecord) -> tuple[Any, ...]:
    return (
        provider.provider_id,
        provider.tenant_id,
        provider.name,
        provider.type,
        json.dumps(list(provider.capabilities)),
        provider.category,
        provider.endpoint,
        provider.created_at_ms,
        provider.updated_at_ms,
    )


SUBSCRIPTION_INDEX_INSERT = (
    "INSERT INTO subscription_categories VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


def subscription_index_rows(s: SubscriptionRecord) -> list[tuple[int, str, str, str]]:
    # One row per category pattern (serve/stores/market_schema.py, migration 5): a literal,
    # or the prefix before a trailing "*".
    return [
        (1, p[:-1], s.subscription_id, s.provider_id)
        if p.endswith("*")
        else (0, p, s.subscription_id, s.provider_id)
        for p in dict.fromkeys(s.categories)
    ]


def _subscription(row: Sequence[Any]) -> SubscriptionRecord:
    return SubscriptionRecord(
        subscription_id=row[0],
        provider_id=row[1],
        tenant_id=row[2],
        categories=tuple(json.loads(row[3])),
        capabilities=tuple(json.loads(row[4])),
        created_at_ms=row[5],
    )


def _insert_key(tx: sqlite3.Connection, key: KeyRecord) -> None:
    tx.execute(
        "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key.key_id,
            key.tenant_id,
            key.kind,
            key.provider_id,
            key.digest,
            key.prefix,
            key.created_at_ms,
            key.revoked_at_ms,
        ),
    )


def _revoke(tx: sqlite3.Connection, tenant_id: str, key_id: str, now_ms: int) -> bool:
    cursor = tx.execute(
        "UPDATE api_keys SET revoked_at_ms = ? WHERE key_id = ? AND tenant_id = ?"
        " AND revoked_at_ms IS NULL",
        (now_ms, key_id, tenant_id),
    )
    # Only a revocation that happened moves the epoch: an unknown or already revoked key
    # would otherwise drop every worker's key cache for free (issue 11, item 4).
    if cursor.rowcount != 1:
        return False
    _bump_epoch(tx)
    return True


def _bump_epoch(tx: sqlite3.Connection) -> None:
    # Every revocation, suspension or plan change bumps the epoch; each worker compares it on
    # every request and drops its whole key cache when it moved (revocation at once).
    tx.execute("UPDATE credentials_epoch SET epoch = epoch + 1")
    _THREAD_FLAGS.epoch_bumped = True


def mark_credentials_epoch_bumped() -> None:
    """A write on this thread's transaction bumped `credentials_epoch` itself
    (serve/billing/usecases.py in the market's transaction): the epoch map is published after its
    COMMIT. A no-op for a PostgreSQL transaction (its workers read the table)."""
    _THREAD_FLAGS.epoch_bumped = True


DATABASE_FILE_MODE = 0o600
_DATABASE_FILE_SUFFIXES = ("", "-wal", "-shm", "-journal", ".epoch")


def secure_database_files(path: Path) -> None:
    """Creates the database file 0600 when missing (before SQLite does, with the umask's mode)
    and makes every file of the database 0600: the main file, -wal, -shm, -journal, .epoch."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, DATABASE_FILE_MODE))
    os.close(os.open(path.with_name(path.name + ".epoch"), os.O_RDWR | os.O_CREAT, 0o600))
    for suffix in _DATABASE_FILE_SUFFIXES:
        with suppress(FileNotFoundError):
            os.chmod(path.with_name(path.name + suffix), DATABASE_FILE_MODE)


def _open_epoch_map(path: Path) -> mmap.mmap:
    with path.open("ab") as handle:
        if handle.tell() < _EPOCH_BYTES:
            handle.write(b"\0" * (_EPOCH_BYTES - handle.tell()))
    with path.open("r+b") as handle:
        return mmap.mmap(handle.fileno(), _EPOCH_BYTES)


_EPOCH_BYTES = 8
# Per thread: did the running transaction bump the epoch (publish it after the COMMIT)?
_THREAD_FLAGS = threading.local()


_PAID_TERM_SELECT = "SELECT plan, agents, ends_at_ms FROM plan_subscriptions WHERE tenant_id = ?"
