"""The stored responses behind `Idempotency-Key`: the IdempotencyStore, written once for SQLite
and PostgreSQL (serve/stores/sql.py).

A claim is atomic across processes through the (scope, key) primary key: exactly one INSERT
wins; the others lock the winner's row (`for_update`; SQLite's writers are serialised) and
read it. A record older than its TTL, or one still in flight past `stale_after_ms` (its
request died), is claimed afresh in place.
"""

from __future__ import annotations

from serve.stores.base import IdempotencyClaim, StoredResponse
from serve.stores.sql import SqlStore

_RECORD_SELECT = (
    "SELECT request_digest, status, body, content_type, created_at_ms"
    " FROM idempotency WHERE scope = ? AND key = ?"
)


class IdempotencyRecords(SqlStore):
    """IdempotencyStore (see serve/stores/base.py)."""

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
        with self._write() as tx:
            inserted = tx.execute(
                "INSERT INTO idempotency (scope, key, request_digest, created_at_ms)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (scope, key) DO NOTHING RETURNING 1 AS claimed",
                (scope, key, request_digest, now_ms),
            ).fetchall()  # to the end: SQLite finishes a RETURNING statement on its last step
            if inserted:
                return IdempotencyClaim("CLAIMED")
            row = tx.execute(
                _RECORD_SELECT + self.for_update,
                (scope, key),
            ).fetchone()
            assert row is not None  # the INSERT found it; deletes need this write lock
            age_ms = now_ms - int(row["created_at_ms"])
            if age_ms > ttl_ms or (row["status"] is None and age_ms > stale_after_ms):
                tx.execute(
                    "UPDATE idempotency SET request_digest = ?, created_at_ms = ?,"
                    " status = NULL, body = NULL, content_type = NULL"
                    " WHERE scope = ? AND key = ?",
                    (request_digest, now_ms, scope, key),
                )
                return IdempotencyClaim("CLAIMED")
        if row["request_digest"] != request_digest:
            return IdempotencyClaim("MISMATCH")
        if row["status"] is None:
            return IdempotencyClaim("IN_FLIGHT")
        response = StoredResponse(int(row["status"]), bytes(row["body"]), row["content_type"])
        return IdempotencyClaim("REPLAY", response)

    def complete(self, scope: str, key: str, response: StoredResponse, *, now_ms: int) -> None:
        with self._write() as tx:
            tx.execute(
                "UPDATE idempotency SET status = ?, body = ?, content_type = ?"
                " WHERE scope = ? AND key = ?",
                (response.status, response.body, response.content_type, scope, key),
            )

    def release(self, scope: str, key: str) -> None:
        with self._write() as tx:
            tx.execute(
                "DELETE FROM idempotency WHERE scope = ? AND key = ? AND status IS NULL",
                (scope, key),
            )

    def prune_idempotency(self, *, before_ms: int, limit: int) -> int:
        # At most `limit` rows per call (row values: SQLite 3.15+, PostgreSQL).
        with self._write() as tx:
            cursor = tx.execute(
                "DELETE FROM idempotency WHERE (scope, key) IN (SELECT scope, key"
                " FROM idempotency WHERE created_at_ms < ? LIMIT ?)",
                (before_ms, limit),
            )
            return cursor.rowcount
