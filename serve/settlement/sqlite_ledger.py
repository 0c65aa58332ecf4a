"""The ledger on SQLite: the driver half of aex/core/ledger.py's sans-I/O protocol.

One operation is one `BEGIN IMMEDIATE` transaction: load the stored record of the
operation_id, the touched holds, then the touched wallets (`touched(op)` twice, as the core
asks); call `apply`; write the wallets, the holds, the journal entry with its postings and the
operation record; read the postings back and re-check them (the paired assert of STYLE.md 7:
checked when built by the core, again as stored); COMMIT. A rejection or a replay writes
nothing. The schema backs the core's invariants: CHECK (available_minor >= 0), CHECK
(held_minor >= 0), one journal entry per operation_id (UNIQUE), no zero postings.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import msgspec

from aex.core import Rejected
from aex.core.ledger import (
    Applied,
    Bucket,
    HoldRecord,
    HoldState,
    JournalEntry,
    LedgerView,
    Operation,
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
from serve.stores.rows import many, one, select_list
from serve.stores.sql import SqliteSql
from serve.stores.sqlite import SqliteStore

_log = logging.getLogger("aex.ledger")

# Operations one group commit may carry: bounds a transaction's size and its WAL growth.
GROUP_COMMIT_OPERATIONS_MAX = 256
# No entry id reaches this (a signed 64-bit integer's max): the history's first page.
_BEFORE_ANY = 2**63 - 1


class _WalletRow(NamedTuple):
    wallet_id: str
    currency: str
    available_minor: int
    held_minor: int
    credit_minor: int
    credit_expires_at_ms: int


class _TotalRow(NamedTuple):
    currency: str
    total_minor: int


class _PostingRow(NamedTuple):
    entry_id: int
    account_id: str
    bucket: str
    amount_minor: int
    currency: str


def _bucket_sum(bucket: str) -> str:
    return f"sum(CASE WHEN p.bucket = '{bucket}' THEN p.amount_minor ELSE 0 END)"


class _HistoryRow(NamedTuple):  # HistoryRow's fields
    entry_id: int
    operation_id: str
    kind: str
    available_change_minor: int
    held_change_minor: int
    currency: str
    created_at_ms: int
    credit_change_minor: int


assert _HistoryRow._fields == HistoryRow.__struct_fields__
_HISTORY_SELECT = (
    "SELECT "  # noqa: S608
    + select_list(
        _HistoryRow,
        entry_id="e.entry_id",
        operation_id="e.operation_id",
        kind="e.kind",
        available_change_minor=_bucket_sum("available"),
        held_change_minor=_bucket_sum("held"),
        currency="p.currency",
        created_at_ms="e.created_at_ms",
        credit_change_minor=_bucket_sum("credit"),
    )
    + " FROM postings p JOIN journal_entries e USING (entry_id)"
    " WHERE p.account_id = ? AND e.entry_id < ?"
    " GROUP BY e.entry_id ORDER BY e.entry_id DESC LIMIT ?"
)
_WALLET_SELECT = f"SELECT {select_list(_WalletRow)} FROM wallets WHERE wallet_id = ?"  # noqa: S608


@dataclass(frozen=True, slots=True)
class _Pending:
    operation: Operation
    future: asyncio.Future[Applied | Rejected[LedgerRejectReason]]


Outcome = Applied | Rejected[LedgerRejectReason] | Exception


def _outcome(
    apply_one: Callable[[Operation], Applied | Rejected[LedgerRejectReason]], operation: Operation
) -> Outcome:
    try:
        return apply_one(operation)
    except Exception as failure:
        return failure


def _settle(
    future: asyncio.Future[Applied | Rejected[LedgerRejectReason]], outcome: Outcome
) -> None:
    # A caller that went away (timeout, disconnect) has a cancelled future: its operation may
    # still have committed, and a retry with the same Idempotency-Key replays it.
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class SqliteLedger:
    """LedgerStore over the same SQLite file as the key store (one database, one WAL)."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._pending: list[_Pending] = []
        self._wakeup: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._writer_connection: sqlite3.Connection | None = None
        # BEGIN and COMMIT run on a thread of their own, never on the loop's shared pool: a
        # COMMIT must not wait for a pool thread that is itself waiting for this transaction's
        # lock (the pool's threads block in the market's writes).
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aex-ledger-io")

    def apply(self, operation: Operation) -> Applied | Rejected[LedgerRejectReason]:
        with self._store.transaction() as tx:
            written: list[tuple[int, JournalEntry]] = []
            result = apply_in_transaction(tx, operation, written)
            check_read_back(tx, written)
        return result

    async def submit(self, operation: Operation) -> Applied | Rejected[LedgerRejectReason]:
        """`apply` with group commit: concurrent operations share one transaction and one
        fsync; every caller is answered only after the COMMIT, so an acknowledged operation is
        on disk. The rules and writes run on the event loop's thread (no GIL hand-offs per
        statement); BEGIN and COMMIT (the lock wait and the fsync) run in a worker thread, and
        meanwhile the loop keeps serving and queueing the next batch. A failing operation is
        isolated by re-running its batch one operation per transaction.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Applied | Rejected[LedgerRejectReason]] = loop.create_future()
        self._pending.append(_Pending(operation, future))
        if self._writer is None or self._wakeup is None:
            self._wakeup = asyncio.Event()
            self._writer = loop.create_task(self._write_batches(self._wakeup))
        self._wakeup.set()
        return await future

    async def _write_batches(self, wakeup: asyncio.Event) -> None:
        while True:
            await wakeup.wait()
            wakeup.clear()
            while self._pending:
                batch = self._pending[:GROUP_COMMIT_OPERATIONS_MAX]
                del self._pending[:GROUP_COMMIT_OPERATIONS_MAX]
                # An operation whose caller went away while it waited (a request's timeout) is
                # not applied: that caller was answered with an error. One taken into a batch
                # is applied and committed even if its caller goes meanwhile.
                batch = [p for p in batch if not p.future.cancelled()]
                if not batch:
                    continue
                try:
                    await self._commit_batch(batch)
                except Exception as failure:  # never ends the writer: every later call waits
                    _log.exception("ledger batch failed outside its transaction")
                    for pending in batch:
                        _settle(pending.future, failure)

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        if self._writer_connection is None:
            self._writer_connection = self._store.open_connection(check_same_thread=False)
        tx = self._writer_connection
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._io, tx.execute, "BEGIN IMMEDIATE")
        except Exception as failure:  # "database is locked": another connection kept it
            for pending in batch:  # past the busy timeout; nothing was written
                _settle(pending.future, failure)
            return
        try:
            written: list[tuple[int, JournalEntry]] = []
            results = [apply_in_transaction(tx, p.operation, written) for p in batch]
            check_read_back(tx, written)
        except Exception:
            tx.execute("ROLLBACK")
            for pending in batch:
                outcome = await asyncio.to_thread(_outcome, self.apply, pending.operation)
                _settle(pending.future, outcome)
            return
        try:
            await loop.run_in_executor(self._io, tx.execute, "COMMIT")
        except Exception as failure:  # nothing of the batch is acknowledged
            if tx.in_transaction:
                tx.execute("ROLLBACK")
            for pending in batch:
                _settle(pending.future, failure)
            return
        for pending, result in zip(batch, results, strict=True):
            _settle(pending.future, result)

    def wallet(self, wallet_id: str) -> Wallet | None:
        row = one(_WalletRow, self._store.connection().execute(_WALLET_SELECT, (wallet_id,)))
        return None if row is None else Wallet(**row._asdict())

    def has_entry(self, wallet_id: str, entry_id: int) -> bool:
        row = (
            self._store.connection()
            .execute(
                "SELECT 1 FROM postings WHERE account_id = ? AND entry_id = ? LIMIT 1",
                (wallet_id, entry_id),
            )
            .fetchone()
        )
        return row is not None

    def history(
        self, wallet_id: str, *, limit: int, before_entry_id: int | None = None
    ) -> Sequence[HistoryRow]:
        rows = many(
            _HistoryRow,
            self._store.connection().execute(
                _HISTORY_SELECT,
                (wallet_id, _BEFORE_ANY if before_entry_id is None else before_entry_id, limit),
            ),
        )
        return [HistoryRow(**row._asdict()) for row in rows]

    def totals_by_currency(self) -> dict[str, int]:
        """The sum of every posting per currency: zero for all, always (double entry)."""
        rows = many(
            _TotalRow,
            self._store.connection().execute(
                f"SELECT {select_list(_TotalRow, total_minor='sum(amount_minor)')}"  # noqa: S608
                " FROM postings GROUP BY currency"
            ),
        )
        return {row.currency: int(row.total_minor) for row in rows}

    def wallet_mismatches(self) -> list[str]:
        """Wallets whose stored balances differ from the sum of their postings (none, ever)."""
        rows = SqliteSql(self._store.connection()).execute(
            "SELECT w.wallet_id FROM wallets w LEFT JOIN ("
            " SELECT account_id, sum(CASE WHEN bucket = 'available' THEN amount_minor END) AS a,"
            " sum(CASE WHEN bucket = 'held' THEN amount_minor END) AS h,"
            " sum(CASE WHEN bucket = 'credit' THEN amount_minor END) AS c"
            " FROM postings GROUP BY account_id) s ON s.account_id = w.wallet_id"
            " WHERE w.available_minor != coalesce(s.a, 0) OR w.held_minor != coalesce(s.h, 0)"
            " OR w.credit_minor != coalesce(s.c, 0)"
        )
        return [row["wallet_id"] for row in rows]


def apply_in_transaction(
    tx: sqlite3.Connection, operation: Operation, written: list[tuple[int, JournalEntry]]
) -> Applied | Rejected[LedgerRejectReason]:
    """One operation inside the caller's open transaction (the market's writes use it): the
    entries written are appended to `written`, for one `check_read_back` before COMMIT."""
    result = _apply_in(tx, operation)
    if isinstance(result, Applied) and not result.replayed:
        written.append((_write(tx, result), result.entry))
    return result


def _apply_in(
    tx: sqlite3.Connection, operation: Operation
) -> Applied | Rejected[LedgerRejectReason]:
    prior_row = (
        SqliteSql(tx)
        .execute(
            "SELECT record FROM journal_entries WHERE operation_id = ?", (operation.operation_id,)
        )
        .fetchone()
    )
    prior = (
        None if prior_row is None else applied_from_json(msgspec.json.decode(prior_row["record"]))
    )
    holds = _holds(tx, touched(operation).hold_ids)
    wallets = _wallets(tx, touched(operation, holds).wallet_ids)
    return apply(LedgerView(wallets=wallets, holds=holds, prior=prior), operation)


def _holds(tx: sqlite3.Connection, hold_ids: Sequence[str]) -> dict[str, HoldRecord]:
    found: dict[str, HoldRecord] = {}
    for hold_id in hold_ids:
        row = (
            SqliteSql(tx)
            .execute(
                "SELECT hold_id, wallet_id, amount_minor, currency, state, payee_wallet_id,"
                " fee_minor, credit_minor FROM holds WHERE hold_id = ?",
                (hold_id,),
            )
            .fetchone()
        )
        if row is not None:
            found[hold_id] = HoldRecord(
                hold_id=row["hold_id"],
                wallet_id=row["wallet_id"],
                amount_minor=row["amount_minor"],
                currency=row["currency"],
                state=HoldState(row["state"]),
                payee_wallet_id=row["payee_wallet_id"],
                fee_minor=row["fee_minor"],
                credit_minor=row["credit_minor"],
            )
    return found


def _wallets(tx: sqlite3.Connection, wallet_ids: Sequence[str]) -> dict[str, Wallet]:
    found: dict[str, Wallet] = {}
    for wallet_id in wallet_ids:
        row = one(_WalletRow, tx.execute(_WALLET_SELECT, (wallet_id,)))
        if row is not None:
            found[wallet_id] = Wallet(**row._asdict())
    return found


def _write(tx: sqlite3.Connection, applied: Applied) -> int:
    # The journal entry row is also the operation's idempotency record (fingerprint, record).
    created_ms = time.time_ns() // 1_000_000
    for w in applied.wallets:
        tx.execute(
            "INSERT INTO wallets (wallet_id, currency, available_minor, held_minor,"
            " credit_minor, credit_expires_at_ms) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (wallet_id) DO UPDATE SET"
            " available_minor = excluded.available_minor, held_minor = excluded.held_minor,"
            " credit_minor = excluded.credit_minor,"
            " credit_expires_at_ms = excluded.credit_expires_at_ms",
            (
                w.wallet_id,
                w.currency,
                w.available_minor,
                w.held_minor,
                w.credit_minor,
                w.credit_expires_at_ms,
            ),
        )
    for h in applied.holds:
        tx.execute(
            "INSERT OR REPLACE INTO holds (hold_id, wallet_id, amount_minor, currency, state,"
            " payee_wallet_id, fee_minor, credit_minor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                h.hold_id,
                h.wallet_id,
                h.amount_minor,
                h.currency,
                h.state.value,
                h.payee_wallet_id,
                h.fee_minor,
                h.credit_minor,
            ),
        )
    entry = applied.entry
    cursor = tx.execute(
        "INSERT INTO journal_entries (operation_id, kind, fingerprint, record, created_at_ms)"
        " VALUES (?, ?, ?, ?, ?)",
        (
            entry.operation_id,
            entry.kind.value,
            applied.fingerprint,
            msgspec.json.encode(applied_to_json(applied)).decode(),
            created_ms,
        ),
    )
    entry_id = cursor.lastrowid
    assert entry_id is not None
    tx.executemany(
        "INSERT INTO postings (entry_id, account_id, bucket, amount_minor, currency)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            (entry_id, p.account_id, p.bucket.value, p.amount_minor, p.currency)
            for p in entry.postings
        ],
    )
    return entry_id


def check_read_back(tx: sqlite3.Connection, written: list[tuple[int, JournalEntry]]) -> None:
    # The paired assert: the postings as stored must rebuild entries that balance, equal to the
    # ones the core built. One query per transaction; an AssertionError rolls it all back.
    if not written:
        return
    rows = many(
        _PostingRow,
        tx.execute(
            f"SELECT {select_list(_PostingRow)} FROM postings"  # noqa: S608
            " WHERE entry_id BETWEEN ? AND ? ORDER BY posting_id",
            (written[0][0], written[-1][0]),
        ),
    )
    stored: dict[int, list[Posting]] = {}
    for row in rows:
        stored.setdefault(row.entry_id, []).append(
            Posting(row.account_id, Bucket(row.bucket), row.amount_minor, row.currency)
        )
    assert len(stored) == len(written)
    for entry_id, entry in written:
        read_back = JournalEntry(entry.operation_id, entry.kind, tuple(stored[entry_id]))
        check_entry(read_back)
        assert read_back.postings == entry.postings
