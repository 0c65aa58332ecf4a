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
   stored. The database refuses, inside that statement, an entry whose stored postings do not
   sum to zero per currency (`ledger_entry_balanced`, migration 17); the driver then checks
   the stored postings against the core's entry (the paired assert of STYLE.md 7).
Both statements are prepared once per connection (one text per operation shape, cached here).

Two transports run those same statements:
- `PostgresLedger.apply`, an operation on its own, takes two round trips: `BEGIN; EXECUTE
  read(...)` in one simple-query message, then `EXECUTE write(...); COMMIT` in another, with
  SQL-level prepared statements (PREPARE, once per connection) and the parameters bound by
  psycopg's ClientCursor. That is half the round trips of BEGIN, read, write, COMMIT through
  the extended protocol and about half the client CPU (measured in bench_pg); the price is
  that the read-back check runs after the COMMIT, which is why the database checks the
  balance before it. A refusal or a replay writes nothing and is rolled back.
- `apply_in_transaction`, inside a caller's open transaction (the market's writes), runs them
  through psycopg's own prepared statements; the caller commits, after the read-back check.

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
import re
import threading
import time
import weakref
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
# The standalone transport also retries when a statement it prepared on a connection is gone
# (a DISCARD or DEALLOCATE by someone else): it forgets that connection's statements first.
_STANDALONE_RETRIED = (*RETRIED_ERRORS, errors.InvalidSqlStatementName)
# Names of the SQL-level prepared statements: the read, and one write per operation shape.
_READ_NAME = "aex_ledger_read"
_PLACEHOLDER = re.compile(r"%s")


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
            except _STANDALONE_RETRIED:
                if attempt == LEDGER_ATTEMPTS_MAX - 1:
                    raise
                self.retries += 1
        raise AssertionError("unreachable")

    async def submit(self, operation: Operation) -> Applied | Rejected[LedgerRejectReason]:
        """`apply` off the event loop: each operation is its own transaction on a pooled
        connection (PostgreSQL's group commit batches the WAL flushes of concurrent commits)."""
        return await asyncio.to_thread(self.apply, operation)

    def _apply_once(self, operation: Operation) -> Applied | Rejected[LedgerRejectReason]:
        # Two round trips (module docstring). psycopg's pipeline mode would also batch BEGIN
        # with the read, but its bookkeeping costs more CPU than the round trip it saves on
        # loopback (measured: 186 vs 171 us of client CPU for BEGIN; SELECT; SELECT; COMMIT).
        # A transaction that an exception leaves open is rolled back by the pooled connection's
        # context (psycopg: a connection's `with` block rolls back on an error).
        with self._store.connection() as connection:
            try:
                return _apply_standalone(connection, operation)
            except errors.InvalidSqlStatementName:
                _PREPARED.forget(connection)
                raise

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
    first = touched(operation)
    read = tx.execute(
        _READ, (operation.operation_id, list(first.hold_ids), list(first.wallet_ids)), prepare=True
    )
    loaded = _loaded(operation, many(_Locked, read))
    result = apply(loaded.view, operation)
    if isinstance(result, Applied) and not result.replayed:
        write = _Write(result, loaded)
        rows = many(_PostingRow, tx.execute(write.statement, write.parameters, prepare=True))
        _check_read_back(rows, result.entry)
    return result


def _apply_standalone(
    connection: psycopg.Connection[Any], operation: Operation
) -> Applied | Rejected[LedgerRejectReason]:
    """One operation in its own transaction, in two round trips (module docstring). When this
    raises, the caller's connection context rolls back what it left open."""
    first = touched(operation)
    cursor = psycopg.ClientCursor(connection)
    _PREPARED.ensure(connection, _READ_NAME, _READ)
    cursor.execute(
        f"BEGIN; EXECUTE {_READ_NAME}(%s, %s, %s)",
        (operation.operation_id, list(first.hold_ids), list(first.wallet_ids)),
    )
    assert cursor.nextset()  # past BEGIN's result, to the read's rows
    loaded = _loaded(operation, many(_Locked, cursor))
    result = apply(loaded.view, operation)
    if not isinstance(result, Applied) or result.replayed:
        connection.execute(b"ROLLBACK")  # nothing to write; the row locks go
        return result
    write = _Write(result, loaded)
    name = _PREPARED.ensure(connection, write.name, write.statement)
    arguments = ", ".join(["%s"] * len(write.parameters))
    cursor.execute(f"EXECUTE {name}({arguments}); COMMIT", write.parameters)
    # After the COMMIT: the database refused an unbalanced entry before it (module docstring).
    _check_read_back(many(_PostingRow, cursor), result.entry)
    return result


class _PreparedStatements:
    """The SQL-level prepared statements of each pooled connection (PREPARE lives as long as
    its session; a new connection starts with none). A connection is used by one thread at a
    time; the lock guards the map itself."""

    def __init__(self) -> None:
        self._names: weakref.WeakKeyDictionary[psycopg.Connection[Any], set[str]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def ensure(self, connection: psycopg.Connection[Any], name: str, statement: str) -> str:
        with self._lock:
            names = self._names.setdefault(connection, set())
        if name not in names:
            # PREPARE takes $n placeholders; every %s of the text is one, in order.
            numbered = iter(range(1, statement.count("%s") + 1))
            text = _PLACEHOLDER.sub(lambda _: f"${next(numbered)}", statement)
            connection.execute(f"PREPARE {name} AS {text}".encode())
            names.add(name)
        return name

    def forget(self, connection: psycopg.Connection[Any]) -> None:
        with self._lock:
            self._names.pop(connection, None)


_PREPARED = _PreparedStatements()


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


def _loaded(operation: Operation, rows: Sequence[_Locked]) -> _Loaded:
    """The view `apply` needs, from the read's rows (the read was given `touched(operation)`:
    the hold ids and the wallets named by the operation itself)."""
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


class _Write:
    """Every write of one operation as one statement (data-modifying CTEs) and its parameters;
    the statement RETURNs the postings as stored, for the read-back check. `name` names its
    shape (the text depends on the shape only), for a prepared statement."""

    __slots__ = ("name", "parameters", "statement")

    def __init__(self, applied: Applied, loaded: _Loaded) -> None:
        entry = applied.entry
        updated = [w for w in applied.wallets if w.wallet_id in loaded.wallet_ids]
        created = [w for w in applied.wallets if w.wallet_id not in loaded.wallet_ids]
        hold_updates = tuple(h.hold_id in loaded.held_ids for h in applied.holds)
        shape = (len(created), len(updated), hold_updates, len(entry.postings))
        self.statement = _write_statement(*shape)
        holds = "".join("u" if is_update else "i" for is_update in hold_updates)
        self.name = f"aex_ledger_write_{shape[0]}_{shape[1]}_{holds}_{shape[3]}"
        self.parameters = _write_parameters(applied, created, updated, hold_updates)


def _write_parameters(
    applied: Applied,
    created: Sequence[Wallet],
    updated: Sequence[Wallet],
    hold_updates: tuple[bool, ...],
) -> list[Any]:
    created_ms = time.time_ns() // 1_000_000
    entry = applied.entry
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
    return parameters


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
    # The postings as stored, and the guard over them: ledger_entry_balanced raises (and the
    # statement fails, and its COMMIT never runs) unless they sum to zero in every currency.
    ctes.append(
        sql.SQL(
            "stored AS (INSERT INTO postings"  # noqa: S608 (no input in the text)
            " (entry_id, account_id, bucket, amount_minor, currency)"
            " SELECT e.entry_id, v.a, v.b, v.m, v.c FROM e, (VALUES {values}) AS v(n, a, b, m, c)"
            " ORDER BY v.n RETURNING entry_id, " + select_list(_PostingRow) + ")"
        ).format(values=_rows(postings, 5, "(%s::int, %s, %s, %s::bigint, %s)"))
    )
    ctes.append(
        sql.SQL(
            "guard AS (SELECT"
            " bool_and(ledger_entry_balanced(t.total_minor, t.currency, t.entry_id)) AS balanced"
            " FROM (SELECT currency, min(entry_id) AS entry_id,"
            " sum(amount_minor) AS total_minor FROM stored GROUP BY currency) AS t)"
        )
    )
    return (
        sql.SQL(
            "WITH {ctes} SELECT "  # noqa: S608
            + select_list(_PostingRow, table="stored")
            + " FROM stored, guard WHERE guard.balanced"
        )
        .format(ctes=sql.SQL(", ").join(ctes))
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
