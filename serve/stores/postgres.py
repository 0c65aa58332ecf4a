"""The scale-out store: PostgreSQL through psycopg 3 and a psycopg_pool connection pool.

Chosen by `AEX_DATABASE_URL=postgresql://...` (SQLite stays the default). It implements the
same protocols as serve/stores/sqlite.py (KeyStore, IdempotencyStore; the LedgerStore is
serve/settlement/postgres_ledger.py) and passes the same contract tests, so several server
processes can share one database:

- Connections are autocommit; every write is one explicit transaction (READ COMMITTED) that
  takes the row locks it needs up front (`SELECT ... FOR UPDATE`), so concurrent processes
  serialise on the rows they share and on nothing else.
- Migrations run under a transaction-scoped advisory lock: two processes starting at once
  apply each migration exactly once (recorded in schema_version, as on SQLite).
- Every pooled connection is taken through the process's `postgres` circuit breaker
  (serve/breakers.py, `connection`): a connection-level error (the server gone, refusing
  connections, shutting down, or no connection from the pool in time) counts as a failure and
  fails the request with `DependencyUnavailable` (503 `dependency-unavailable` with
  `Retry-After`); five in a row open the breaker, and while it is open every request fails at
  once, without waiting on the pool, until the 10 s probe. The pool reconnects on its own, so
  the probe that finds PostgreSQL back closes the breaker: no restart of the exchange.
- `schema` names the PostgreSQL schema holding the tables (created when missing): tests give
  each test its own and drop it afterwards (`drop_schema`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from aex.core import BreakerState, Plan, QuotaRejectReason, Rejected
from serve.breakers import CircuitBreaker, DependencyUnavailable
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
from serve.stores.postgres_migrations import PG_MIGRATIONS
from serve.stores.sqlite import (
    _KEY_SELECT,
    _PROVIDER_SELECT,
    _SUBSCRIPTION_SELECT,
    _TENANT_SELECT,
    SUBSCRIPTION_INDEX_INSERT,
    _key,
    _provider,
    _provider_row,
    _subscription,
    _tenant,
    subscription_index_rows,
)

# Connections per process: handlers run in a thread pool, the gateway in the event loop.
POOL_CONNECTIONS_MIN = 2
POOL_CONNECTIONS_MAX = 16
POOL_WAIT_TIMEOUT_S = 30.0
# The wait for a pooled connection while the breaker suspects PostgreSQL (failures counted, or
# the half-open probe): a dead server must not hold requests for the whole pool timeout.
SUSPECT_WAIT_TIMEOUT_S = 2.0
BREAKER_NAME = "postgres"
# SQLSTATEs of a connection that is gone: class 08 (connection exception) and the server's
# shutdown codes (admin_shutdown, crash_shutdown, cannot_connect_now).
_OUTAGE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
# The advisory lock key that serialises migrations across processes ("aex" in ASCII).
_MIGRATION_LOCK_KEY = 0x616578
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def is_postgres_url(url: str | None) -> bool:
    return url is not None and url.startswith(("postgresql://", "postgres://"))


def is_outage(error: psycopg.Error) -> bool:
    """Whether an error says PostgreSQL is unreachable (not that a statement was refused)."""
    if isinstance(error, psycopg.InterfaceError):
        return True  # the connection is closed
    if not isinstance(error, psycopg.OperationalError):
        return False
    state = error.sqlstate  # None: no server answer at all (refused, reset, pool timeout)
    return state is None or state.startswith("08") or state in _OUTAGE_SQLSTATES


class PostgresStore:
    """KeyStore + IdempotencyStore (+ LedgerStore, see serve/settlement/postgres_ledger.py)."""

    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        pool_min: int = POOL_CONNECTIONS_MIN,
        pool_max: int = POOL_CONNECTIONS_MAX,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        assert _SCHEMA_NAME.fullmatch(schema), schema
        assert 0 < pool_min <= pool_max
        self.url = url
        self.schema = schema
        self.breaker = breaker or CircuitBreaker(BREAKER_NAME)
        self._create_schema()
        self.pool = ConnectionPool(
            url,
            min_size=pool_min,
            max_size=pool_max,
            kwargs={"autocommit": True, "options": f"-c search_path={schema}"},
            timeout=POOL_WAIT_TIMEOUT_S,
            open=True,
            name=f"aex-{schema}",
        )
        self.migrate()

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self.pool.close()

    def _create_schema(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
            connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )

    def drop_schema(self) -> None:
        """Drops the whole schema (tests only): closes the pool first."""
        assert self.schema != "public"
        self.close()
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
            )

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection, through the `postgres` breaker: fails fast while it is open;
        a connection-level error counts as a failure and becomes `DependencyUnavailable`."""
        breaker = self.breaker
        if not breaker.allow():
            raise DependencyUnavailable(BREAKER_NAME, breaker.retry_after_s())
        probing = breaker.state is BreakerState.HALF_OPEN  # only the probe gets through
        timeout = SUSPECT_WAIT_TIMEOUT_S if breaker.suspect else POOL_WAIT_TIMEOUT_S
        outage = False
        try:
            if probing:
                self._revive_pool()
            with self.pool.connection(timeout=timeout) as connection:
                yield connection
        except psycopg.Error as error:
            if not is_outage(error):
                raise
            outage = True
            breaker.failure()
            raise DependencyUnavailable(BREAKER_NAME, breaker.retry_after_s()) from error
        finally:
            if not outage:
                breaker.success()  # PostgreSQL answered (a refused statement is an answer)

    def _revive_pool(self) -> None:
        """The probe: PostgreSQL answers a connection of its own, then the pool drops the
        connections the outage broke and opens new ones at once (its own reconnection backs
        off, and a broken idle connection would fail the next request)."""
        with psycopg.connect(self.url, autocommit=True, connect_timeout=2) as probe:
            probe.execute("SELECT 1")
        self.pool.check()

    @contextmanager
    def read(self) -> Iterator[psycopg.Connection[Any]]:
        with self.connection() as connection:
            yield connection

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """BEGIN ... COMMIT on one pooled connection; any exception rolls everything back."""
        with self.connection() as connection, connection.transaction():
            yield connection

    def migrate(self) -> int:
        with self.transaction() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            current = tx.execute("SELECT coalesce(max(version), 0) FROM schema_version")
            version = int(_one(current)[0])
            for number, script in PG_MIGRATIONS:
                if number <= version:
                    continue
                for statement in script.split(";"):
                    if statement.strip():
                        tx.execute(statement.encode())
                tx.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
                version = number
        return version

    def schema_version(self) -> int:
        with self.read() as connection:
            return int(_one(connection.execute("SELECT max(version) FROM schema_version"))[0])

    def _fetch_one(self, query: str, parameters: Sequence[Any]) -> Any:
        with self.read() as connection:
            return connection.execute(query.encode(), parameters).fetchone()

    def _fetch_all(self, query: str, parameters: Sequence[Any]) -> list[Any]:
        with self.read() as connection:
            return connection.execute(query.encode(), parameters).fetchall()

    # -- tenants and keys -------------------------------------------------------------------

    def create_tenant(self, tenant: TenantRecord, key: KeyRecord) -> None:
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO tenants VALUES (%s, %s, %s, %s, %s, %s)",
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
        found = self._fetch_one(_TENANT_SELECT + " WHERE tenant_id = %s", (tenant_id,))
        return None if found is None else _tenant(found)

    def list_tenants(self, *, limit: int) -> Sequence[TenantRecord]:
        rows = self._fetch_all(
            _TENANT_SELECT + " ORDER BY created_at_ms, tenant_id LIMIT %s", (limit,)
        )
        return [_tenant(row) for row in rows]

    def set_tenant_status(self, tenant_id: str, status: str) -> TenantRecord | None:
        with self.transaction() as tx:
            changed = tx.execute(
                "UPDATE tenants SET status = %s WHERE tenant_id = %s AND status <> %s",
                (status, tenant_id, status),
            )
            if changed.rowcount == 1:  # an unknown tenant or no change: no epoch bump
                _bump_epoch(tx)
        return self.get_tenant(tenant_id)

    def set_tenant_plan(self, tenant_id: str, plan: Plan) -> TenantRecord | None:
        with self.transaction() as tx:
            changed = tx.execute(
                "UPDATE tenants SET plan = %s WHERE tenant_id = %s AND plan <> %s",
                (plan.value, tenant_id, plan.value),
            )
            if changed.rowcount == 1:  # an unknown tenant or no change: no epoch bump
                _bump_epoch(tx)
        return self.get_tenant(tenant_id)

    def add_key(self, key: KeyRecord) -> None:
        with self.transaction() as tx:
            _insert_key(tx, key)

    def list_keys(self, tenant_id: str) -> Sequence[KeyRecord]:
        rows = self._fetch_all(
            _KEY_SELECT + " WHERE tenant_id = %s ORDER BY created_at_ms, key_id", (tenant_id,)
        )
        return [_key(row) for row in rows]

    def revoke_key(self, tenant_id: str, key_id: str, *, now_ms: int) -> KeyRecord | None:
        with self.transaction() as tx:
            _revoke(tx, tenant_id, key_id, now_ms)
            row = tx.execute(
                (_KEY_SELECT + " WHERE key_id = %s AND tenant_id = %s").encode(),
                (key_id, tenant_id),
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
        row = self._fetch_one(
            "SELECT k.key_id, k.tenant_id, k.kind, k.digest, k.prefix, k.created_at_ms,"
            " k.provider_id, k.revoked_at_ms, t.tenant_id, t.name, t.type, t.plan, t.status,"
            " t.created_at_ms FROM api_keys k JOIN tenants t USING (tenant_id)"
            " WHERE k.digest = %s",
            (digest,),
        )
        if row is None:
            return None
        return CredentialMatch(key=_key(row[:8]), tenant=_tenant(row[8:]))

    def paid_term(self, tenant_id: str) -> tuple[str, int, int] | None:
        row = self._fetch_one(_PAID_TERM_SELECT, (tenant_id,))
        return None if row is None else (str(row[0]), int(row[1]), int(row[2]))

    def credentials_epoch(self) -> int:
        return int(self._fetch_one("SELECT epoch FROM credentials_epoch", ())[0])

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
        # The tenant row lock serialises registrations of one tenant across processes: two
        # concurrent registrations cannot both pass a "max agents" of 1.
        with self.transaction() as tx:
            tx.execute(
                "SELECT 1 FROM tenants WHERE tenant_id = %s FOR UPDATE", (provider.tenant_id,)
            )
            count = _one(
                tx.execute(
                    "SELECT count(*) FROM providers WHERE tenant_id = %s", (provider.tenant_id,)
                )
            )[0]
            rejected = check_agents(int(count))
            if rejected is not None:
                return rejected
            row = _provider_row(provider)
            tx.execute(
                "INSERT INTO providers VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (*row[:7], secret_digest, *row[7:], webhook_secret_sealed),
            )
            _insert_key(tx, key)
        return None

    def get_provider(self, provider_id: str) -> ProviderRecord | None:
        found = self._fetch_one(_PROVIDER_SELECT + " WHERE provider_id = %s", (provider_id,))
        return None if found is None else _provider(found)

    def list_providers(self, tenant_id: str) -> Sequence[ProviderRecord]:
        rows = self._fetch_all(
            _PROVIDER_SELECT + " WHERE tenant_id = %s ORDER BY created_at_ms, provider_id",
            (tenant_id,),
        )
        return [_provider(row) for row in rows]

    def update_provider(self, provider: ProviderRecord) -> None:
        with self.transaction() as tx:
            tx.execute(
                "UPDATE providers SET name = %s, capabilities = %s, category = %s,"
                " endpoint = %s, updated_at_ms = %s WHERE provider_id = %s AND tenant_id = %s",
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
                "UPDATE providers SET webhook_secret_sealed = %s WHERE provider_id = %s"
                " AND tenant_id = %s",
                (sealed, provider_id, tenant_id),
            )
            return cursor.rowcount == 1

    def create_subscription(
        self, subscription: SubscriptionRecord, *, check_subscriptions: AgentsCheck
    ) -> Rejected[QuotaRejectReason] | None:
        # The provider row lock serialises one provider's subscriptions across processes: two
        # concurrent ones cannot both pass the plan's last free slot.
        with self.transaction() as tx:
            tx.execute(
                "SELECT 1 FROM providers WHERE provider_id = %s FOR UPDATE",
                (subscription.provider_id,),
            )
            count = _one(
                tx.execute(
                    "SELECT count(*) FROM subscriptions WHERE provider_id = %s",
                    (subscription.provider_id,),
                )
            )[0]
            rejected = check_subscriptions(int(count))
            if rejected is not None:
                return rejected
            tx.execute(
                "INSERT INTO subscriptions VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    subscription.subscription_id,
                    subscription.provider_id,
                    subscription.tenant_id,
                    json.dumps(list(subscription.categories)),
                    json.dumps(list(subscription.capabilities)),
                    subscription.created_at_ms,
                ),
            )
            for row in subscription_index_rows(subscription):
                tx.execute(SUBSCRIPTION_INDEX_INSERT.replace("?", "%s"), row)
        return None

    def list_subscriptions(
        self, tenant_id: str, provider_id: str | None
    ) -> Sequence[SubscriptionRecord]:
        query = _SUBSCRIPTION_SELECT + " WHERE tenant_id = %s"
        parameters: tuple[str, ...] = (tenant_id,)
        if provider_id is not None:
            query += " AND provider_id = %s"
            parameters = (tenant_id, provider_id)
        rows = self._fetch_all(query + " ORDER BY created_at_ms, subscription_id", parameters)
        return [_subscription(row) for row in rows]

    def get_subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        found = self._fetch_one(
            _SUBSCRIPTION_SELECT + " WHERE subscription_id = %s", (subscription_id,)
        )
        return None if found is None else _subscription(found)

    def delete_subscription(self, subscription_id: str) -> bool:
        with self.transaction() as tx:
            tx.execute(
                "DELETE FROM subscription_categories WHERE subscription_id = %s",
                (subscription_id,),
            )
            cursor = tx.execute(
                "DELETE FROM subscriptions WHERE subscription_id = %s", (subscription_id,)
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
        # The (scope, key) primary key makes the claim atomic across processes: exactly one
        # INSERT wins; the others lock the winner's row and read it.
        with self.transaction() as tx:
            inserted = tx.execute(
                "INSERT INTO idempotency (scope, key, request_digest, created_at_ms)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (scope, key) DO NOTHING RETURNING 1",
                (scope, key, request_digest, now_ms),
            ).fetchone()
            if inserted is not None:
                return IdempotencyClaim("CLAIMED")
            row = _one(
                tx.execute(
                    "SELECT request_digest, status, body, content_type, created_at_ms"
                    " FROM idempotency WHERE scope = %s AND key = %s FOR UPDATE",
                    (scope, key),
                )
            )
            if now_ms - row[4] > ttl_ms or (row[1] is None and now_ms - row[4] > stale_after_ms):
                tx.execute(
                    "UPDATE idempotency SET request_digest = %s, created_at_ms = %s,"
                    " status = NULL, body = NULL, content_type = NULL"
                    " WHERE scope = %s AND key = %s",
                    (request_digest, now_ms, scope, key),
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
                "UPDATE idempotency SET status = %s, body = %s, content_type = %s"
                " WHERE scope = %s AND key = %s",
                (response.status, response.body, response.content_type, scope, key),
            )

    def release(self, scope: str, key: str) -> None:
        with self.transaction() as tx:
            tx.execute(
                "DELETE FROM idempotency WHERE scope = %s AND key = %s AND status IS NULL",
                (scope, key),
            )

    def prune_idempotency(self, *, before_ms: int, limit: int) -> int:
        with self.transaction() as tx:
            cursor = tx.execute(
                "DELETE FROM idempotency WHERE ctid IN (SELECT ctid FROM idempotency"
                " WHERE created_at_ms < %s LIMIT %s)",
                (before_ms, limit),
            )
            return cursor.rowcount


def _one(cursor: psycopg.Cursor[Any]) -> Any:
    row = cursor.fetchone()
    assert row is not None
    return row


def _insert_key(tx: psycopg.Connection[Any], key: KeyRecord) -> None:
    tx.execute(
        "INSERT INTO api_keys VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
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


def _revoke(tx: psycopg.Connection[Any], tenant_id: str, key_id: str, now_ms: int) -> bool:
    cursor = tx.execute(
        "UPDATE api_keys SET revoked_at_ms = %s WHERE key_id = %s AND tenant_id = %s"
        " AND revoked_at_ms IS NULL",
        (now_ms, key_id, tenant_id),
    )
    # Only a revocation that happened moves the epoch: an unknown or already revoked key
    # would otherwise drop every worker's key cache for free (issue 11, item 4).
    if cursor.rowcount != 1:
        return False
    _bump_epoch(tx)
    return True


def _bump_epoch(tx: psycopg.Connection[Any]) -> None:
    # As on SQLite: each process compares the epoch on every request and drops its key cache
    # when it moved, so a revocation on one process is refused by every other at once.
    tx.execute("UPDATE credentials_epoch SET epoch = epoch + 1")


_PAID_TERM_SELECT = "SELECT plan, agents, ends_at_ms FROM plan_subscriptions WHERE tenant_id = %s"
