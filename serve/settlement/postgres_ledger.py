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
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

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
from serve.stores.rows import many, one, scalars, select_list

# A lost race (a row created, an operation applied by another process) is retried this often.
LEDGER_ATTEMPTS_MAX = 8
# No entry id reaches this (a signed 64-bit integer's max): the history's first page.
_BEFORE_ANY = 2**63 - 1
T = TypeVar("T")
RETRIED_ERRORS = (errors.UniqueViolation, errors.SerializationFailure, errors.DeadlockDetected)


class _WalletRow(NamedTuple):
    wallet_id: str
    currency: str
    available_minor: int
    held_minor: int
    credit_minor: int
    credit_expires_at_ms: int


class _HistoryRow(NamedTuple):  # sum(bigint) is numeric on PostgreSQL: read as Decimal
    entry_id: int
    operation_id: str
    kind: str
    available_change_minor: Decimal
    held_change_minor: Decimal
    currency: str
    created_at_ms: int
    credit_change_minor: Decimal


class _TotalRow(NamedTuple):
    currency: str
    total_minor: Decimal


class _PostingRow(NamedTuple):
    posting_id: int
    account_id: str
    bucket: str
    amount_minor: int
    currency: str


def _bucket_sum(bucket: str) -> str:
    return f"sum(CASE WHEN p.bucket = '{bucket}' THEN p.amount_minor ELSE 0 END)"


_WALLET_SELECT = f"SELECT {select_list(_WalletRow)} FROM wallets WHERE wallet_id = %s"  # noqa: S608
_HISTORY_SELECT = (
    "SELECT "  # noqa: S608
    + select_list(
        _HistoryRow,
        entry_id="e.entry_id",
        operation_id="e.operation_id",
        kind="e.kind",
        available_change_minor=_bucket_sum("available"),
        held_change_minor=_bucket_sum("held"),
        currency="min(p.currency)",
        created_at_ms="e.created_at_ms",
        credit_change_minor=_bucket_sum("credit"),
    )
    + " FROM postings p JOIN journal_entries e USING (entry_id)"
    " WHERE p.account_id = %s AND e.entry_id < %s"
    " GROUP BY e.entry_id ORDER BY e.entry_id DESC LIMIT %s"
)


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
            row = one(_WalletRow, connection.execute(_WALLET_SELECT, (wallet_id,)))
        return None if row is None else Wallet(**row._asdict())

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
            rows = many(
                _HistoryRow,
                connection.execute(
                    _HISTORY_SELECT,
                    (wallet_id, _BEFORE_ANY if before_entry_id is None else before_entry_id, limit),
                ),
            )
        return [
            HistoryRow(
                entry_id=row.entry_id,
                operation_id=row.operation_id,
                kind=row.kind,
                available_change_minor=int(row.available_change_minor),
                held_change_minor=int(row.held_change_minor),
                currency=row.currency,
                created_at_ms=row.created_at_ms,
                credit_change_minor=int(row.credit_change_minor),
            )
            for row in rows
        ]

    def totals_by_currency(self) -> dict[str, int]:
        """The sum of every posting per currency: zero for all, always (double entry)."""
        with self._store.read() as connection:
            rows = many(
                _TotalRow,
                connection.execute(
                    f"SELECT {select_list(_TotalRow, total_minor='sum(amount_minor)')}"  # noqa: S608
                    " FROM postings GROUP BY currency"
                ),
            )
        return {row.currency: int(row.total_minor) for row in rows}

    def wallet_mismatches(self) -> list[str]:
        """Wallets whose stored balances differ from the sum of their postings (none, ever)."""
        with self._store.read() as connection:
            found = connection.execute(
                "SELECT w.wallet_id FROM wallets w LEFT JOIN ("
                " SELECT account_id,"
                " sum(CASE WHEN bucket = 'available' THEN amount_minor END) AS a,"
                " sum(CASE WHEN bucket = 'held' THEN amount_minor END) AS h,"
                " sum(CASE WHEN bucket = 'credit' THEN amount_minor END) AS c"
                " FROM postings GROUP BY account_id) s ON s.account_id = w.wallet_id"
                " WHERE w.available_minor != coalesce(s.a, 0) OR w.held_minor != coalesce(s.h, 0)"
                " OR w.credit_minor != coalesce(s.c, 0)"
            )
            return [str(wallet_id) for wallet_id in scalars(found)]


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


class _Locked(NamedTuple):
    """One row of _READ: the operation's stored record (`tag` 'p'), a locked hold ('h') or a
    locked wallet ('w'); the columns of the other two tags are NULL in it."""

    tag: str
    record: str | None
    hold_id: str | None
    payer_wallet_id: str | None
    hold_amount_minor: int | None
    hold_currency: str | None
    hold_state: str | None
    payee_wallet_id: str | None
    fee_minor: int | None
    hold_credit_minor: int | None
    wallet_id: str | None
    currency: str | None
    available_minor: int | None
    held_minor: int | None
    credit_minor: int | None
    credit_expires_at_ms: int | None


# The NULLs of a branch are typed: a UNION resolves its column types branch by branch, and an
# untyped NULL first would resolve a bigint column as text. Names carry units (STYLE.md 9): the
# `_minor` and `_ms` columns are the bigint ones.
_LOCKED_NULLS = {
    field: "NULL::bigint" if field.endswith(("_minor", "_ms")) else "NULL::text"
    for field in _Locked._fields
}


def _locked_branch(**columns: str) -> str:
    return select_list(_Locked, **(_LOCKED_NULLS | columns))


# One statement reads the operation's stored record and locks its hold and then its wallets:
# the CTEs run in the order the UNION ALL asks for them (record, hold, wallets), and the
# wallets' key list (the ones named up front, plus the payer and any payee of the locked hold)
# is an InitPlan over the hold CTE, which runs it to the end, taking every hold lock, before
# the first wallet is locked: the lock order stays hold-then-wallets-by-id.
_READ = f"""
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
SELECT {_locked_branch(tag="'p'", record="record")} FROM p
UNION ALL
SELECT {
    _locked_branch(
        tag="'h'",
        hold_id="hold_id",
        payer_wallet_id="wallet_id",
        hold_amount_minor="amount_minor",
        hold_currency="currency",
        hold_state="state",
        payee_wallet_id="payee_wallet_id",
        fee_minor="fee_minor",
        hold_credit_minor="credit_minor",
    )
} FROM h
UNION ALL
SELECT {
    _locked_branch(
        tag="'w'",
        wallet_id="wallet_id",
        currency="currency",
        available_minor="available_minor",
        held_minor="held_minor",
        credit_minor="credit_minor",
        credit_expires_at_ms="credit_expires_at_ms",
    )
} FROM w
"""  # noqa: S608 (no input in the text: every value is a parameter)


def _load(tx: psycopg.Connection[Any], operation: Operation) -> _Loaded:
    first = touched(operation)  # the hold ids and the wallets named by the operation itself
    rows = many(
        _Locked,
        tx.execute(
            _READ,
            (operation.operation_id, list(first.hold_ids), list(first.wallet_ids)),
            prepare=True,
        ),
    )
    records = [_given(row.record) for row in rows if row.tag == "p"]
    prior = None if not records else applied_from_json(json.loads(records[0]))
    holds = {hold.hold_id: hold for hold in (_hold(row) for row in rows if row.tag == "h")}
    wallets = {w.wallet_id: w for w in (_wallet(row) for row in rows if row.tag == "w")}
    # The statement locked exactly the wallets `touched` names once the holds are known (the
    # missing ones do not exist yet: `apply` opens them or refuses).
    assert wallets.keys() <= set(touched(operation, holds).wallet_ids)
    return _Loaded(LedgerView(wallets=wallets, holds=holds, prior=prior))


def _given(value: T | None) -> T:
    # A column of its own tag's row: NOT NULL in its table.
    assert value is not None
    return value


def _hold(row: _Locked) -> HoldRecord:
    return HoldRecord(
        hold_id=_given(row.hold_id),
        wallet_id=_given(row.payer_wallet_id),
        amount_minor=_given(row.hold_amount_minor),
        currency=_given(row.hold_currency),
        state=HoldState(_given(row.hold_state)),
        payee_wallet_id=row.payee_wallet_id,
        fee_minor=_given(row.fee_minor),
        credit_minor=_given(row.hold_credit_minor),
    )


def _wallet(row: _Locked) -> Wallet:
    return Wallet(
        wallet_id=_given(row.wallet_id),
        currency=_given(row.currency),
        available_minor=_given(row.available_minor),
        held_minor=_given(row.held_minor),
        credit_minor=_given(row.credit_minor),
        credit_expires_at_ms=_given(row.credit_expires_at_ms),
    )


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
    _check_read_back(many(_PostingRow, tx.execute(statement, parameters, prepare=True)), entry)


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
            "WITH {ctes} INSERT INTO postings"  # noqa: S608
            " (entry_id, account_id, bucket, amount_minor, currency)"
            " SELECT e.entry_id, v.a, v.b, v.m, v.c FROM e, (VALUES {values}) AS v(n, a, b, m, c)"
            " ORDER BY v.n RETURNING " + select_list(_PostingRow)
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


def _check_read_back(rows: Sequence[_PostingRow], entry: JournalEntry) -> None:
    # The paired assert: the postings as stored must rebuild an entry that balances, equal to
    # the one the core built. An AssertionError here rolls the whole operation back.
    stored = JournalEntry(
        entry.operation_id,
        OperationKind(entry.kind),
        tuple(
            Posting(row.account_id, Bucket(row.bucket), row.amount_minor, row.currency)
            for row in sorted(rows)
        ),
    )
    check_entry(stored)
    assert stored.postings == entry.postings
