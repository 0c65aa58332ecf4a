"""The market's transaction drivers: one interface, two backends.

serve/market/usecases.py owns the market's rules and SQL (written with `?` placeholders, in the SQL
that SQLite and PostgreSQL share); a driver owns how a write transaction runs, how the ledger is
applied inside it, how its outbox rows are written and how the outbox is read back:

- `SqliteMarketDb`: one group-commit writer thread. Concurrent writes share one
  `BEGIN IMMEDIATE ... COMMIT` (one fsync), each inside its own SAVEPOINT, so a refused write
  rolls back alone. SQLite serialises writers, so row locks are not needed (`for_update` and
  `skip_locked` are empty) and outbox sequence numbers are in commit order.
- `PostgresMarketDb`: one READ COMMITTED transaction per write on a pooled connection; the
  market's reads that guard a transition carry `FOR UPDATE` (the work row for bids, cancel
  and close; the contract row for every contract change), so concurrent processes serialise
  on the rows they share. A window is closed under `FOR UPDATE SKIP LOCKED`: a second closer
  skips a window another process is closing, and a closer that dies mid-close releases the
  lock with its connection, leaving the window OPEN for the next poll. A lost race (unique
  violation, deadlock, serialization failure) re-runs the whole write.
  Outbox rows are written last, under a transaction-scoped advisory lock held to COMMIT, so
  sequence numbers are in commit order here too: a reader that has seen row n never later
  finds a row below n (what the event hub, `Last-Event-ID` and the NATS relay cursor rely on).

Both run one relay per database (`relay_leader`): an exclusive file lock beside the SQLite file,
a session advisory lock on PostgreSQL; a process that dies releases it to the next.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

import psycopg
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind

from aex.core import Rejected
from aex.core.ledger import Applied, JournalEntry, Operation
from aex.core.reasons import LedgerRejectReason
from serve.settlement import postgres_ledger, sqlite_ledger
from serve.stores.postgres import PostgresStore
from serve.stores.rows import many, scalar, scalars, select_list
from serve.stores.sql import pg_sql
from serve.stores.sqlite import SqliteStore
from serve.telemetry import tracing

_log = logging.getLogger("aex.market_db")

T = TypeVar("T")

# The embedded default's database file, inside the data directory (AEX_DATA_DIR).
DATABASE_FILE = "aex.sqlite3"
# Writes one group commit may carry: bounds a transaction's size and a caller's wait.
GROUP_COMMIT_WRITES_MAX = 128
# A write that lost a race on PostgreSQL is run again this often before the error surfaces.
WRITE_ATTEMPTS_MAX = 8
OUTBOX_READ_MAX = 500


class SqlCursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class SqlConnection(Protocol):
    """What the market's SQL needs of a connection: `execute` with `?` placeholders."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...


@dataclass(frozen=True, slots=True)
class OutboxRow:
    event_id: str
    type: str
    subject_id: str
    occurred_at_ms: int
    payload: str  # the event's payload as JSON text
    # the W3C trace context of the write (serve/telemetry/tracing.py)
    traceparent: str | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """A relay leader's hold on its role: `held()` asks whether it still holds it."""

    held: Callable[[], bool]


@dataclass
class Session:
    """One write transaction as the market sees it: its connection, the ledger applied inside
    it, and the outbox rows to write before COMMIT."""

    connection: SqlConnection
    apply_ledger: Callable[[Operation], Applied | Rejected[LedgerRejectReason]]
    outbox: list[OutboxRow] = field(default_factory=list)


_INSERT_OUTBOX = (
    "INSERT INTO outbox (event_id, type, subject_id, occurred_at_ms, payload, traceparent)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


class OutboxRead(NamedTuple):
    """An outbox row as read back, with its sequence number (commit order)."""

    seq: int
    event_id: str
    type: str
    subject_id: str
    occurred_at_ms: int
    payload: str  # JSON text
    traceparent: str | None


_SELECT_OUTBOX = (
    f"SELECT {select_list(OutboxRead)} FROM outbox"  # noqa: S608
    " WHERE seq > ? ORDER BY seq LIMIT ?"
)


def _outbox_parameters(rows: Sequence[OutboxRow]) -> list[tuple[Any, ...]]:
    return [
        (r.event_id, r.type, r.subject_id, r.occurred_at_ms, r.payload, r.traceparent) for r in rows
    ]


def _transaction_span(system: str, parent: otel_context.Context | None = None) -> Any:
    """The span of one market write transaction (a no-op unless tracing is configured)."""
    return tracing.span(
        "db.transaction", kind=SpanKind.CLIENT, parent=parent, attributes={"db.system": system}
    )


class MarketDb(Protocol):
    for_update: str  # appended to a SELECT that guards a transition
    skip_locked: str  # ... that a concurrent holder may skip (the window closer)

    def run(self, work: Callable[[Session], T]) -> T: ...

    async def run_async(self, work: Callable[[Session], T]) -> T: ...

    def read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]: ...

    def reader(self) -> Any: ...  # a context manager yielding an SqlConnection

    def outbox_after(self, seq: int, limit: int = OUTBOX_READ_MAX) -> list[OutboxRead]: ...

    def outbox_head(self) -> int: ...

    def relay_cursor(self, name: str) -> int: ...

    def saved_cursor(self, name: str) -> int | None: ...

    def save_relay_cursor(self, name: str, seq: int) -> None: ...

    def relay_leader(self, name: str) -> Any: ...  # a context manager yielding a Lease | None

    def mutex(self, name: str) -> Any: ...  # a context manager: one holder across processes


class _Driver:
    """What both drivers do the same way, through their own `read` and `run`: the outbox reads,
    the relay cursor, and the in-process half of `mutex`."""

    def __init__(self) -> None:
        self._local_mutexes: dict[str, threading.Lock] = {}
        self._local_mutexes_guard = threading.Lock()

    def read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def run(self, work: Callable[[Session], T]) -> T:
        raise NotImplementedError

    def outbox_after(self, seq: int, limit: int = OUTBOX_READ_MAX) -> list[OutboxRead]:
        return many(OutboxRead, self.read(_SELECT_OUTBOX, (seq, limit)))

    def outbox_head(self) -> int:
        return int(scalars(self.read("SELECT coalesce(max(seq), 0) FROM outbox"))[0])

    def relay_cursor(self, name: str) -> int:
        saved = self.saved_cursor(name)
        return 0 if saved is None else saved

    def saved_cursor(self, name: str) -> int | None:
        """The cursor saved under `name`; None when none was ever saved."""
        seqs = scalars(self.read("SELECT last_seq FROM outbox_relay WHERE name = ?", (name,)))
        return None if not seqs else int(seqs[0])

    def save_relay_cursor(self, name: str, seq: int) -> None:
        """Moves the cursor forward only (a late save of an older position changes nothing)."""

        def write(session: Session) -> None:
            session.connection.execute(
                "INSERT INTO outbox_relay (name, last_seq) VALUES (?, ?) ON CONFLICT (name)"
                " DO UPDATE SET last_seq = CASE WHEN excluded.last_seq > outbox_relay.last_seq"
                " THEN excluded.last_seq ELSE outbox_relay.last_seq END",
                (name, seq),
            )

        self.run(write)

    def _local_mutex(self, name: str) -> threading.Lock:
        """The in-process half of `mutex`: one lock per name, so one thread per process waits
        for the cross-process half."""
        with self._local_mutexes_guard:
            return self._local_mutexes.setdefault(name, threading.Lock())


@contextmanager
def _lock_file(path: Path, *, wait: bool) -> Iterator[bool]:
    """An exclusive `flock` on `path` (created 0600), held until the block ends: True when
    held; with wait=False, False at once when another holder has it."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)  # releases the lock


# ---------------------------------------------------------------------------------------------
# SQLite


@dataclass(frozen=True, slots=True)
class _Pending:
    work: Callable[[Session], Any]
    future: Future[Any]
    context: otel_context.Context  # the submitter's: the write's span is its child


class SqliteMarketDb(_Driver):
    for_update = ""
    skip_locked = ""

    def __init__(self, store: SqliteStore) -> None:
        super().__init__()
        self.store = store
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()

    def run(self, work: Callable[[Session], T]) -> T:
        """Runs `work` in the group-commit writer and waits for its COMMIT.

        Every caller is answered after the COMMIT, so an acknowledged write is on disk. Each
        write reads the state as left by the writes before it in the batch, so the guards hold
        exactly as with one transaction each.
        """
        result: T = self.submit(work).result()
        return result

    async def run_async(self, work: Callable[[Session], T]) -> T:
        """`run` from the event loop, without a worker-thread hop."""
        return await asyncio.wrap_future(self.submit(work))

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        if self._writer is None:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = threading.Thread(
                        target=self._write_batches, name="aex-market-writer", daemon=True
                    )
                    self._writer.start()
        future: Future[T] = Future()
        self._queue.put(_Pending(work, future, otel_context.get_current()))
        return future

    def _write_batches(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < GROUP_COMMIT_WRITES_MAX:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            # A write whose caller went away while it waited (a request's timeout cancels the
            # awaiting task, and with it this future) is not run: that caller was answered
            # with an error, so nothing of it may be written. A write taken here is RUNNING,
            # and can no longer be cancelled: its caller may go, its answer is still set.
            # (Setting the answer of a cancelled future raised in this thread and ended it,
            # after which no market write ever completed.)
            batch = [p for p in batch if p.future.set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                self._commit_batch(batch)
            except Exception as failure:  # never ends the writer: every later write waits
                _log.exception("market write batch failed outside its transaction")
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(failure)

    def _commit_batch(self, batch: list[_Pending]) -> None:
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            with self.store.transaction() as connection:
                for pending in batch:
                    connection.execute("SAVEPOINT market_write")
                    try:
                        with _transaction_span("sqlite", pending.context):
                            result = self._run_in(connection, pending.work)
                    except Exception as failure:
                        connection.execute("ROLLBACK TO market_write")
                        connection.execute("RELEASE market_write")
                        outcomes.append((pending.future, None, failure))
                        continue
                    connection.execute("RELEASE market_write")
                    outcomes.append((pending.future, result, None))
        except Exception as commit_failure:  # the COMMIT itself failed: nothing was written
            for pending in batch:
                pending.future.set_exception(commit_failure)
            return
        for future, value, refused in outcomes:
            if refused is None:
                future.set_result(value)
            else:
                future.set_exception(refused)

    @staticmethod
    def _run_in(connection: sqlite3.Connection, work: Callable[[Session], T]) -> T:
        written: list[tuple[int, JournalEntry]] = []

        def apply_ledger(operation: Operation) -> Applied | Rejected[LedgerRejectReason]:
            return sqlite_ledger.apply_in_transaction(connection, operation, written)

        session = Session(connection, apply_ledger)
        result = work(session)
        if session.outbox:
            connection.executemany(_INSERT_OUTBOX, _outbox_parameters(session.outbox))
        sqlite_ledger.check_read_back(connection, written)
        return result

    def read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        return self.store.connection().execute(sql, parameters).fetchall()

    @contextmanager
    def reader(self) -> Iterator[SqlConnection]:
        yield self.store.connection()

    @contextmanager
    def relay_leader(self, name: str) -> Iterator[Lease | None]:
        """A lease in the one process (per SQLite file) that holds `<file>.<name>.lock`, None
        in the others. A file lock lives as long as its descriptor: the lease never lapses."""
        with _lock_file(Path(f"{self.store.path}.{name}.lock"), wait=False) as held:
            yield Lease(lambda: True) if held else None

    @contextmanager
    def mutex(self, name: str) -> Iterator[None]:
        """Held by one thread of one process (per SQLite file) at a time; waits for it."""
        with (
            self._local_mutex(name),
            _lock_file(Path(f"{self.store.path}.{name}.lock"), wait=True),
        ):
            yield


# ---------------------------------------------------------------------------------------------
# PostgreSQL


class PgConnection:
    """A psycopg connection that takes the market's `?` placeholders."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, statement: str, parameters: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.raw.execute(pg_sql(statement), parameters)


class PostgresMarketDb(_Driver):
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, store: PostgresStore) -> None:
        super().__init__()
        self.store = store
        self.retries = 0  # lost races re-run, for the tests
        # Advisory lock keys are per database; tests run many schemas in one database.
        self._outbox_lock = f"aex:{store.schema}:outbox"

    def run(self, work: Callable[[Session], T]) -> T:
        for attempt in range(WRITE_ATTEMPTS_MAX):
            try:
                with _transaction_span("postgresql"):
                    return self._run_once(work)
            except postgres_ledger.RETRIED_ERRORS:
                if attempt == WRITE_ATTEMPTS_MAX - 1:
                    raise
                self.retries += 1
        raise AssertionError("unreachable")

    async def run_async(self, work: Callable[[Session], T]) -> T:
        return await asyncio.to_thread(self.run, work)

    def _run_once(self, work: Callable[[Session], T]) -> T:
        with self.store.connection() as raw, raw.transaction():

            def apply_ledger(operation: Operation) -> Applied | Rejected[LedgerRejectReason]:
                return postgres_ledger.apply_in_transaction(raw, operation)

            session = Session(PgConnection(raw), apply_ledger)
            result = work(session)
            if session.outbox:
                # Held to COMMIT: outbox sequence numbers are handed out in commit order.
                raw.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._outbox_lock,))
                with raw.cursor() as cursor:
                    cursor.executemany(pg_sql(_INSERT_OUTBOX), _outbox_parameters(session.outbox))
            return result

    def read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        with self.store.read() as raw:
            return raw.execute(pg_sql(sql), parameters).fetchall()

    @contextmanager
    def reader(self) -> Iterator[SqlConnection]:
        with self.store.read() as raw:
            yield PgConnection(raw)

    @contextmanager
    def relay_leader(self, name: str) -> Iterator[Lease | None]:
        """A lease in the one process (per database schema) holding the relay's session
        advisory lock, on a connection of its own kept for as long as it leads; None in the
        others. The lease lapses when that connection does (a server restart, a network cut,
        `pg_terminate_backend`): the lock is gone with it, and another process may lead."""
        key = f"aex:{self.store.schema}:relay:{name}"
        with psycopg.connect(self.store.url, autocommit=True) as raw:
            if not scalar(raw.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,))):
                yield None
                return

            def held() -> bool:
                try:
                    locks = scalar(
                        raw.execute(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                            " AND pid = pg_backend_pid() AND granted"
                        )
                    )
                except psycopg.Error:
                    return False
                return bool(locks)

            yield Lease(held)

    @contextmanager
    def mutex(self, name: str) -> Iterator[None]:
        """Held by one holder across every process on this database schema; waits for it. A
        transaction-scoped advisory lock on a pooled connection: released at its end, and by
        the server if the holder dies."""
        key = f"aex:{self.store.schema}:mutex:{name}"
        # One waiter per process: waiting threads must not hold the pool's connections that the
        # holder needs for its own reads and writes.
        with (
            self._local_mutex(name),
            self.store.connection() as raw,
            raw.transaction(),
        ):
            raw.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
            yield


def open_market_db(data_dir: Path, env: Mapping[str, str]) -> MarketDb:
    """The exchange's database as a command or test outside the server opens it, chosen as
    `aex serve` chooses: AEX_DATABASE_URL (and AEX_DATABASE_SCHEMA) for PostgreSQL, else the
    SQLite file in `data_dir`. Closing a PostgreSQL driver's pool is the caller's (`.store`)."""
    url = env.get("AEX_DATABASE_URL")
    if url:
        schema = env.get("AEX_DATABASE_SCHEMA") or "public"
        return PostgresMarketDb(PostgresStore(url, schema=schema, pool_min=1, pool_max=4))
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    return SqliteMarketDb(SqliteStore(Path(data_dir) / DATABASE_FILE))
