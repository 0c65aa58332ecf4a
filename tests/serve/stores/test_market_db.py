"""The market's transaction drivers (serve/stores/market_db.py): one contract, both backends."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from aex.core import Money, Plan
from aex.core.events import EventType
from aex.core.ledger import Deposit
from serve.gateway.problems import ProblemError
from serve.identity.security import Principal, PrincipalKind, now_ms
from serve.market.usecases import Market
from serve.notifications.events import Delivered, DurableTail
from serve.settlement.wallets import wallet_id
from serve.stores.market_db import OutboxRow, PostgresMarketDb, Session
from tests.conftest import TEST_DATABASE_URL, Stores, _postgres, _sqlite
from tests.serve.market_helpers import work_body

TENANT = "ten_00000000000000aa"
CONSUMER = Principal(PrincipalKind.TENANT, TENANT, Plan.ENTERPRISE)


def _columns(store: Stores) -> dict[str, list[str]]:
    if store.backend == "sqlite":
        tables = store.market.read(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        return {
            name: sorted(r[1] for r in store.market.read(f"PRAGMA table_info({name})"))
            for (name,) in tables
        }
    rows = store.market.read(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema()"
    )
    found: dict[str, list[str]] = {}
    for table, column in rows:
        found.setdefault(table, []).append(column)
    return {table: sorted(columns) for table, columns in found.items()}


def test_both_backends_hold_the_same_tables_and_columns(tmp_path: Path) -> None:
    sqlite_side, postgres_side = _sqlite(tmp_path), _postgres(tmp_path)
    lite, pg = next(sqlite_side), next(postgres_side)
    try:
        lite_columns, pg_columns = _columns(lite), _columns(pg)
        assert {"work", "bids", "contracts", "outbox", "webhook_deliveries"} <= set(pg_columns)
        assert lite_columns == pg_columns
    finally:
        postgres_side.close()


def _emit(n: int) -> OutboxRow:
    return OutboxRow(f"evt_{n:012d}", "work.submitted", f"work_{n}", n, "{}")


def test_a_refused_write_leaves_no_outbox_row_and_no_ledger_entry(store: Stores) -> None:
    wallet = wallet_id(TENANT, "USD")

    def refused(session: Session) -> None:
        session.apply_ledger(Deposit("dep-1", wallet, Money(500, "USD")))
        session.outbox.append(_emit(1))
        raise ValueError("refused after writing")

    with pytest.raises(ValueError, match="refused after writing"):
        store.market.run(refused)
    assert store.market.outbox_head() == 0
    assert store.ledger.wallet(wallet) is None

    def accepted(session: Session) -> int:
        session.apply_ledger(Deposit("dep-2", wallet, Money(500, "USD")))
        session.outbox.append(_emit(2))
        return 7

    assert store.market.run(accepted) == 7
    assert [row[1] for row in store.market.outbox_after(0)] == ["evt_000000000002"]
    wallet_after = store.ledger.wallet(wallet)
    assert wallet_after is not None
    assert wallet_after.available_minor == 500


def test_a_caller_that_goes_away_never_stops_the_writes_after_it(store: Stores) -> None:
    # A request's timeout cancels the task awaiting its write. Once, on SQLite, the writer
    # thread then set the answer of a cancelled future, raised, and ended: every later market
    # write waited forever. Now a write still queued when its caller goes is not run (its
    # caller was answered with an error: nothing of it is written), one already running
    # commits, and the writes after both complete.
    async def scenario() -> tuple[str, str]:
        started = threading.Event()

        def slow(session: Session) -> str:
            started.set()
            time.sleep(0.3)  # holds the writer (SQLite) while the next caller goes away
            session.outbox.append(_emit(1))
            return "slow"

        def gone(session: Session) -> None:
            session.outbox.append(_emit(2))

        running = asyncio.ensure_future(store.market.run_async(slow))
        while not started.is_set():
            await asyncio.sleep(0.005)
        if store.backend == "sqlite":
            queued = asyncio.ensure_future(store.market.run_async(gone))
            await asyncio.sleep(0.02)
            queued.cancel()

        def abandoned_write(session: Session) -> None:
            time.sleep(0.05)
            session.outbox.append(_emit(4))

        abandoned = asyncio.ensure_future(store.market.run_async(abandoned_write))
        await asyncio.sleep(0.02)
        abandoned.cancel()  # queued behind the first on SQLite, running on PostgreSQL

        def after(session: Session) -> str:
            session.outbox.append(_emit(3))
            return "after"

        later = await asyncio.wait_for(store.market.run_async(after), timeout=10)
        return await running, later

    assert asyncio.run(scenario()) == ("slow", "after")
    time.sleep(0.1)  # PostgreSQL: the abandoned write, already running on its thread, ends
    events = {row[1] for row in store.market.outbox_after(0)}
    if store.backend == "sqlite":  # one writer: both were cancelled while queued, never run
        assert events == {"evt_000000000001", "evt_000000000003"}
    else:  # a thread each: the abandoned one had most likely started, and then commits
        assert {"evt_000000000001", "evt_000000000003"} <= events
        assert events <= {"evt_000000000001", "evt_000000000003", "evt_000000000004"}


def test_a_tail_that_follows_the_outbox_by_sequence_never_misses_a_row(store: Stores) -> None:
    # Concurrent writers, one reader that only ever asks for rows after the last it saw: if
    # sequence numbers were not in commit order, a row committed late below the reader's
    # position would be skipped for good.
    writers, per_writer = 4, 40
    seen: list[str] = []
    done = threading.Event()

    def write(w: int) -> None:
        for i in range(per_writer):
            n = w * 1_000 + i

            def work(session: Session, n: int = n) -> None:
                session.outbox.append(_emit(n))

            store.market.run(work)

    def tail() -> None:
        last = 0
        while True:
            finished = done.is_set()
            for row in store.market.outbox_after(last):
                last = row[0]
                seen.append(row[1])
            if finished:
                return

    reader = threading.Thread(target=tail)
    reader.start()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()
    assert len(seen) == writers * per_writer
    assert len(set(seen)) == len(seen)


def test_one_relay_leads_at_a_time_and_a_released_lead_passes_on(store: Stores) -> None:
    first = store.market.relay_leader("nats")
    lease = first.__enter__()
    assert lease is not None
    assert lease.held()
    with store.market.relay_leader("nats") as second:
        assert second is None
    first.__exit__(None, None, None)
    with store.market.relay_leader("nats") as third:
        assert third is not None
        assert third.held()


def test_a_leader_whose_connection_is_cut_sees_its_lease_lapse_and_another_leads(
    postgres_store: Stores,
) -> None:
    db = postgres_store.market
    with db.relay_leader("nats") as lease:
        assert lease is not None
        assert lease.held()
        # The leader's own lock connection dies (a network cut, a PostgreSQL restart).
        cut = db.read(
            "SELECT pg_terminate_backend(pid) FROM pg_locks"
            " WHERE locktype = 'advisory' AND granted AND pid != pg_backend_pid()"
            " AND objid = hashtext(?)::oid",
            (f"aex:{db.store.schema}:relay:nats",),
        )
        assert cut == [(True,)]
        assert not lease.held()
        with db.relay_leader("nats") as successor:
            assert successor is not None


def test_the_relay_cursor_only_moves_forward(store: Stores) -> None:
    assert store.market.relay_cursor("nats") == 0
    store.market.save_relay_cursor("nats", 10)
    store.market.save_relay_cursor("nats", 4)
    assert store.market.relay_cursor("nats") == 10


def test_a_cursor_never_saved_is_told_apart_from_one_at_zero(store: Stores) -> None:
    assert store.market.saved_cursor("webhooks") is None
    store.market.save_relay_cursor("webhooks", 0)
    assert store.market.saved_cursor("webhooks") == 0
    assert store.market.saved_cursor("nats") is None  # one cursor per name


def test_a_durable_tail_starts_at_the_head_once_then_where_it_was_saved(store: Stores) -> None:
    market, _ = _open_work(store)
    head = store.market.outbox_head()
    assert head > 0
    seen: list[list[int]] = []

    async def consume(batch: list[Delivered]) -> None:
        seen.append([event.seq for event in batch])

    tail = DurableTail(store.market, "webhooks", consume, poll_ms=10)
    assert tail.start_position() == head  # the first start: from now, not all of history
    assert store.market.saved_cursor("webhooks") == head
    market.submit_work(CONSUMER, work_body())  # committed while no tail runs

    async def run_a_while() -> None:
        task = asyncio.create_task(tail.run())
        await asyncio.sleep(0.5)
        task.cancel()

    asyncio.run(run_a_while())
    committed = [row.seq for row in store.market.outbox_after(head)]
    assert committed  # the work's events
    assert seen == [committed]
    assert store.market.saved_cursor("webhooks") == committed[-1]


def _open_work(store: Stores) -> tuple[Market, str]:
    store.ledger.apply(Deposit("dep-w", wallet_id(TENANT, "USD"), Money(100_000, "USD")))
    market = Market(store.market)
    work = market.submit_work(CONSUMER, work_body())
    return market, str(work["work_id"])


def test_a_window_is_closed_once_however_many_closers_race(store: Stores) -> None:
    market, work_id = _open_work(store)
    results: list[str | None] = []
    threads = [
        threading.Thread(target=lambda: results.append(market.close_window(work_id, early=True)))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=str) == [None] * 5 + ["UNFILLED"]
    closed = store.market.read("SELECT count(*) FROM outbox WHERE type = ?", ("work.unfilled",))
    assert closed[0][0] == 1


@pytest.fixture
def postgres_store(tmp_path: Path) -> Iterator[Stores]:
    # PostgreSQL only: on SQLite one writer closes, and a dead writer's transaction is rolled
    # back with its file lock; there is no other closer mid-close to skip.
    yield from _postgres(tmp_path)


def test_a_closer_that_dies_mid_close_leaves_the_window_to_another(
    postgres_store: Stores,
) -> None:
    store = postgres_store
    assert isinstance(store.market, PostgresMarketDb)
    market, work_id = _open_work(store)
    store.market.run(
        lambda s: s.connection.execute(
            "UPDATE work SET closes_at_ms = 0 WHERE work_id = ?", (work_id,)
        )
    )
    assert market.due_windows(now_ms()) == [work_id]
    options = f"-c search_path={store.market.store.schema}"
    closer = psycopg.connect(TEST_DATABASE_URL, options=options)  # another process, mid-close
    closer.execute("SELECT state FROM work WHERE work_id = %s FOR UPDATE", (work_id,))
    # This process's poll skips the window that closer holds, at once (no wait on its lock) ...
    results: list[str | None] = []
    poll = threading.Thread(target=lambda: results.append(market.close_window(work_id)))
    poll.start()
    poll.join(timeout=10)
    assert not poll.is_alive(), "the closer waited on a locked window instead of skipping it"
    assert results == [None]
    assert store.market.read("SELECT state FROM work WHERE work_id = ?", (work_id,)) == [("OPEN",)]
    # ... and when that closer dies (its connection drops, uncommitted), the next poll closes it.
    closer.close()
    # The server ends the dead closer's backend (and its lock) a moment after the disconnect.
    deadline = time.monotonic() + 10
    closed = market.close_window(work_id)
    while closed is None and time.monotonic() < deadline:
        time.sleep(0.05)
        closed = market.close_window(work_id)
    assert closed == "UNFILLED"
    events = store.market.read(
        "SELECT count(*) FROM outbox WHERE type = ?", (EventType.WORK_UNFILLED.value,)
    )
    assert events[0][0] == 1


def test_a_refused_market_write_is_a_problem_and_writes_nothing(store: Stores) -> None:
    market, work_id = _open_work(store)
    before = store.market.outbox_head()
    stranger = Principal(PrincipalKind.TENANT, "ten_00000000000000bb", Plan.ENTERPRISE)
    with pytest.raises(ProblemError) as refused:
        market.cancel_work(stranger, work_id)
    assert refused.value.status == 404
    assert store.market.outbox_head() == before
