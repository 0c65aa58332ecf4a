"""The ledger on PostgreSQL: the driver half of aex/core/ledger.py's protocol, for many processes.

One operation is one READ COMMITTED transaction of two statements between BEGIN and COMMIT:
1. one read that fetches the stored record of the operation_id and locks the touched hold and
   then the touched wallets, sorted by wallet_id (`FOR UPDATE`; a hold is always locked before
   wallets and wallets in one global order, so two operations never wait on each other in a
   cycle). A capture, release or refund names its payer (and a captured hold its payee) only
   through the hold: the same statement learns them from the hold row it has just locked (the
   wallet lock's key list is a subquery over the locked hold, so every hold lock is taken
   before the first wallet lock);
2. the pure `apply`; then one write (data-modifying CTEs: wallets, hold, journal entry, which
   doubles as the operation's idempotency record, and postings) that RETURNs the postings as
   stored, re-checked before COMMIT (the paired assert of STYLE.md 7).
Both statements are prepared on first use (one text per operation shape, cached here).

Rows that did not exist when read (a first deposit, a new hold) are INSERTed, never upserted:
if another process created the same row meanwhile, the INSERT fails on the primary key and
the whole operation is retried from step 1, where it now finds (and locks) that row. The same
holds for a concurrent application of the same operation_id (UNIQUE on journal_entries): the
retry finds the stored record and answers with a replay. So several processes can never
double-spend, apply an operation twice or settle a hold twice; and the schema's CHECK
(available_minor >= 0) and CHECK (held_minor >= 0) hold regardless.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import errors, sql

from aex.core import Rejected
from aex.core.ledger import (
    Applied,
    Bucket,
    HoldRecord,
    HoldState,
    JournalEntry,
    LedgerView,
    Operation,
    OperationKind,
    Posting,
    Wallet,
    applied_from_json,
    applied_to_json,
    apply,
    check_entry,
    touched,
)
from aex.core.reasons import LedgerRejectReason
from serve.stores.base import HistoryRow
from serve.stores.postgres import PostgresStore

# A lost race (a row created, an operation applied by another process) is retried this often.
LEDGER_ATTEMPTS_MAX = 8
# No entry id reaches this (a signed 64-bit integer's max): the history's first page.
_BEFORE_ANY = 2**63 - 1
RETRIED_ERRORS = (errors.UniqueViolation, errors.SerializationFailure, errors.DeadlockDetected)


class PostgresLedger:
    """LedgerStore over the PostgresStore's pool (one database for keys and money)."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self.retries = 0  # lost races retried, for the tests and the benchmark

    def apply(self, operation: Operation) -> Applied | Rejected[LedgerRejectReason]:
        for attempt in range(LEDGER_ATTEMPTS_MAX):
            try:
                return self._apply_once(operation)
            except RETRIED_ERRORS:
                if attempt == LEDGER_ATTEMPTS_MAX - 1:
                    raise
                self.retries += 1
        raise AssertionError("unreachable")

    async def submit(self, operation: Operation) -> Applied | Rejected[LedgerRejectReason]:
        """`apply` off the event loop: each operation is its own transaction on a pooled
        connection (PostgreSQL's group commit batches the WAL flushes of concurrent commits)."""
        return await asyncio.to_thread(self.apply, operation)

    def _apply_once(self, operation: Operation) -> Applied | Rejected[LedgerRejectReason]:
        # Four round trips (BEGIN, read and lock, write, COMMIT), for every kind: plain
        # statements, not pipeline mode, whose bookkeeping costs more than it saves on loopback
        # (measured: 1.0 vs 0.34 ms for BEGIN; SELECT; COMMIT).
        with self._store.connection() as tx, tx.transaction():
            return apply_in_transaction(tx, operation)

    def wallet(self, wallet_id: str) -> Wallet | None:
        with self._store.read() as connection:
            row = connection.execute(
                "SELECT wallet_id, currency, available_minor, held_minor, credit_minor,"
                " credit_expires_at_ms FROM wallets WHERE wallet_id = %s",
                (wallet_id,),
            ).fetchone()
        return None if row is None else Wallet(*row)

    def has_entry(self, wallet_id: str, entry_id: int) -> bool:
        with self._store.read() as connection:
            row = connection.execute(
                "SELECT 1 FROM postings WHERE account_id = %s AND entry_id = %s LIMIT 1",
                (wallet_id, entry_id),
            ).fetchone()
        return row is not None

    def history(
        self, wallet_id: str, *, limit: int, before_entry_id: int | None = None
    ) -> Sequence[HistoryRow]:
        with self._store.read() as connection:
            rows = connection.execute(
                "SELECT e.entry_id, e.operation_id, e.kind,"
                " sum(CASE WHEN p.bucket = 'available' THEN p.amount_minor ELSE 0 END),"
                " sum(CASE WHEN p.bucket = 'held' THEN p.amount_minor ELSE 0 END),"
                " min(p.currency), e.created_at_ms,"
                " sum(CASE WHEN p.bucket = 'credit' THEN p.amount_minor ELSE 0 END)"
                " FROM postings p JOIN journal_entries e USING (entry_id)"
                " WHERE p.account_id = %s AND e.entry_id < %s"
                " GROUP BY e.entry_id ORDER BY e.entry_id DESC LIMIT %s",
                (wallet_id, _BEFORE_ANY if before_entry_id is None else before_entry_id, limit),
            ).fetchall()
        return [
            HistoryRow(entry, operation, kind, int(available), int(held), currency, at, int(credit))
            for entry, operation, kind, available, held, currency, at, credit in rows
        ]

    def totals_by_currency(self) -> dict[str, int]:
        """The sum of every posting per currency: zero for all, always (double entry)."""
        with self._store.read() as connection:
            rows = connection.execute(
                "SELECT currency, sum(amount_minor) FROM postings GROUP BY currency"
            ).fetchall()
        return {currency: int(total) for currency, total in rows}

    def wallet_mismatches(self) -> list[str]:
        """Wallets whose stored balances differ from the sum of their postings (none, ever)."""
        with self._store.read() as connection:
            rows = connection.execute(
                "SELECT w.wallet_id FROM wallets w LEFT JOIN ("
                " SELECT account_id,"
                " sum(CASE WHEN bucket = 'available' THEN amount_minor END) AS a,"
                " sum(CASE WHEN bucket = 'held' THEN amount_minor END) AS h,"
                " sum(CASE WHEN bucket = 'credit' THEN amount_minor END) AS c"
                " FROM postings GROUP BY account_id) s ON s.account_id = w.wallet_id"
                " WHERE w.available_minor != coalesce(s.a, 0) OR w.held_minor != coalesce(s.h, 0)"
                " OR w.credit_minor != coalesce(s.c, 0)"
            ).fetchall()
        return [wallet_id for (wallet_id,) in rows]


def apply_in_transaction(
    tx: psycopg.Connection[Any], operation: Operation
) -> Applied | Rejected[LedgerRejectReason]:
    """One operation inside the caller's open transaction (the market's writes use it): lock,
    apply, write and read back. A lost race raises one of RETRIED_ERRORS: the caller rolls its
    whole transaction back and runs it again."""
    loaded = _load(tx, operation)
    result = apply(loaded.view, operation)
    if isinstance(result, Applied) and not result.replayed:
        _write(tx, result, loaded)
    return result


class _Loaded:
    __slots__ = ("held_ids", "view", "wallet_ids")

    def __init__(self, view: LedgerView) -> None:
        self.view = view
        self.wallet_ids = frozenset(view.wallets)
        self.held_ids = frozenset(view.holds)


# One statement reads the operation's stored record and locks its hold and then its wallets:
# the CTEs run in the order the UNION ALL asks for them (record, hold, wallets), and the
# wallets' key list (the ones named up front, plus the payer and any payee of the locked hold)
# is an InitPlan over the hold CTE, which runs it to the end, taking every hold lock, before
# the first wallet is locked: the lock order stays hold-then-wallets-by-id.
# Rows: (tag, a, b, c, d, e, f, g, x, y).
_READ = """
WITH p AS (SELECT record FROM journal_entries WHERE operation_id = %s),
h AS (SELECT hold_id, wallet_id, amount_minor, currency, state, payee_wallet_id, fee_minor,
             credit_minor
      FROM holds WHERE hold_id = ANY(%s::text[]) ORDER BY hold_id FOR UPDATE),
w AS (SELECT wallet_id, currency, available_minor, held_minor, credit_minor,
             credit_expires_at_ms FROM wallets
      WHERE wallet_id = ANY(%s::text[]
                            || ARRAY(SELECT wallet_id FROM h)
                            || ARRAY(SELECT payee_wallet_id FROM h
                                     WHERE payee_wallet_id IS NOT NULL))
      ORDER BY wallet_id FOR UPDATE)
SELECT 'p', record, NULL, NULL::bigint, NULL, NULL, NULL, NULL::bigint, NULL::bigint,
       NULL::bigint FROM p
UNION ALL
SELECT 'h', hold_id, wallet_id, amount_minor, currency, state, payee_wallet_id, fee_minor,
       credit_minor, NULL::bigint FROM h
UNION ALL
SELECT 'w', wallet_id, currency, available_minor, NULL, NULL, NULL, held_minor, credit_minor,
       credit_expires_at_ms FROM w
"""


def _load(tx: psycopg.Connection[Any], operation: Operation) -> _Loaded:
    first = touched(operation)  # the hold ids and the wallets named by the operation itself
    rows = tx.execute(
        _READ,
        (operation.operation_id, list(first.hold_ids), list(first.wallet_ids)),
        prepare=True,
    ).fetchall()
    prior_rows = [r for r in rows if r[0] == "p"]
    prior = None if not prior_rows else applied_from_json(json.loads(prior_rows[0][1]))
    holds = {
        r[1]: HoldRecord(r[1], r[2], r[3], r[4], HoldState(r[5]), r[6], r[7], r[8])
        for r in rows
        if r[0] == "h"
    }
    wallets = {r[1]: Wallet(r[1], r[2], r[3], r[7], r[8], r[9]) for r in rows if r[0] == "w"}
    # The statement locked exactly the wallets `touched` names once the holds are known (the
    # missing ones do not exist yet: `apply` opens them or refuses).
    assert wallets.keys() <= set(touched(operation, holds).wallet_ids)
    return _Loaded(LedgerView(wallets=wallets, holds=holds, prior=prior))


def _write(tx: psycopg.Connection[Any], applied: Applied, loaded: _Loaded) -> None:
    """Every write of one operation in one statement (data-modifying CTEs), RETURNING the
    postings as stored for the read-back check."""
    created_ms = time.time_ns() // 1_000_000
    entry = applied.entry
    updated = [w for w in applied.wallets if w.wallet_id in loaded.wallet_ids]
    created = [w for w in applied.wallets if w.wallet_id not in loaded.wallet_ids]
    hold_updates = tuple(h.hold_id in loaded.held_ids for h in applied.holds)
    parameters: list[Any] = []
    for w in created:
        parameters += [
            w.wallet_id,
            w.currency,
            w.available_minor,
            w.held_minor,
            w.credit_minor,
            w.credit_expires_at_ms,
        ]
    for w in updated:
        parameters += [
            w.wallet_id,
            w.available_minor,
            w.held_minor,
            w.credit_minor,
            w.credit_expires_at_ms,
        ]
    for h, is_update in zip(applied.holds, hold_updates, strict=True):
        row = [h.wallet_id, h.amount_minor, h.currency, h.state.value, h.payee_wallet_id]
        tail = [h.fee_minor, h.credit_minor]
        parameters += [*row, *tail, h.hold_id] if is_update else [h.hold_id, *row, *tail]
    record = json.dumps(applied_to_json(applied), separators=(",", ":"))
    parameters += [entry.operation_id, entry.kind.value, applied.fingerprint, record, created_ms]
    for n, p in enumerate(entry.postings):
        parameters += [n, p.account_id, p.bucket.value, p.amount_minor, p.currency]
    statement = _write_statement(len(created), len(updated), hold_updates, len(entry.postings))
    rows = tx.execute(statement, parameters, prepare=True).fetchall()
    _check_read_back(rows, entry)


@lru_cache(maxsize=64)
def _write_statement(
    created: int, updated: int, hold_updates: tuple[bool, ...], postings: int
) -> str:
    """The write's text for one shape of operation (a handful of shapes exist: each kind with
    or without new wallets), so psycopg prepares it once per connection."""
    ctes: list[sql.Composable] = []
    if created:
        # Created here, never upserted: a concurrent creator makes this fail (and retry).
        ctes.append(
            sql.SQL(
                "wc AS (INSERT INTO wallets (wallet_id, currency, available_minor, held_minor,"
                " credit_minor, credit_expires_at_ms) VALUES {})"
            ).format(_rows(created, 6))
        )
    if updated:
        ctes.append(
            sql.SQL(
                "wu AS (UPDATE wallets w SET available_minor = v.a, held_minor = v.h,"
                " credit_minor = v.c, credit_expires_at_ms = v.x"
                " FROM (VALUES {}) AS v(id, a, h, c, x) WHERE w.wallet_id = v.id)"
            ).format(_rows(updated, 5, "(%s, %s::bigint, %s::bigint, %s::bigint, %s::bigint)"))
        )
    for n, is_update in enumerate(hold_updates):
        if is_update:
            ctes.append(
                sql.SQL(
                    "{} AS (UPDATE holds SET wallet_id = %s, amount_minor = %s, currency = %s,"
                    " state = %s, payee_wallet_id = %s, fee_minor = %s, credit_minor = %s"
                    " WHERE hold_id = %s)"
                ).format(sql.Identifier(f"h{n}"))
            )
        else:
            ctes.append(
                sql.SQL(
                    "{} AS (INSERT INTO holds (hold_id, wallet_id, amount_minor, currency, state,"
                    " payee_wallet_id, fee_minor, credit_minor)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s))"
                ).format(sql.Identifier(f"h{n}"))
            )
    ctes.append(
        sql.SQL(
            "e AS (INSERT INTO journal_entries"
            " (operation_id, kind, fingerprint, record, created_at_ms)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING entry_id)"
        )
    )
    return (
        sql.SQL(
            "WITH {ctes} INSERT INTO postings"
            " (entry_id, account_id, bucket, amount_minor, currency)"
            " SELECT e.entry_id, v.a, v.b, v.m, v.c FROM e, (VALUES {values}) AS v(n, a, b, m, c)"
            " ORDER BY v.n RETURNING posting_id, account_id, bucket, amount_minor, currency"
        )
        .format(
            ctes=sql.SQL(", ").join(ctes),
            values=_rows(postings, 5, "(%s::int, %s, %s, %s::bigint, %s)"),
        )
        .as_string()
    )


def _rows(count: int, width: int, row: str | None = None) -> sql.Composed:
    placeholders = sql.SQL(row or "(" + ", ".join(["%s"] * width) + ")")
    return sql.SQL(", ").join([placeholders] * count)


def _check_read_back(rows: Sequence[Any], entry: JournalEntry) -> None:
    # The paired assert: the postings as stored must rebuild an entry that balances, equal to
    # the one the core built. An AssertionError here rolls the whole operation back.
    stored = JournalEntry(
        entry.operation_id,
        OperationKind(entry.kind),
        tuple(Posting(a, Bucket(b), m, c) for _, a, b, m, c in sorted(rows)),
    )
    check_entry(stored)
    assert stored.postings == entry.postings
