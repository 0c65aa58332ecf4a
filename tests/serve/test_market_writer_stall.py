"""A stalled database must not stop the exchange for good (the SQLite group-commit writers of
serve/stores/market_db.py and serve/settlement/sqlite_ledger.py). Another process holds the
file's write lock:
- for longer than the request timeout: the bids waiting on it answer 504, and once the lock is
  gone the market takes writes again. (It did not: the market's writer thread set the answer
  of a bid whose caller had timed out, raised and ended; every later bid answered 504.)
- for longer than the busy timeout: the deposit and the bid waiting on it answer 503
  `dependency-unavailable` with Retry-After, nothing is written, and once the lock is gone
  both are taken again. (The ledger's writer task ended on the failed BEGIN: that deposit
  waited for its request timeout, and so did every later one.)"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx

from serve.stores.market_db import DATABASE_FILE
from tests.conftest import write_lock_held
from tests.serve.market_helpers import balance, bid, consumer, provider, submit_work
from tests.serve.server import Server

TIMEOUT_S = 1.0
STALL_S = 2.5  # longer than the request timeout, shorter than SQLite's busy timeout (30 s)


def test_bids_that_time_out_behind_a_held_write_lock_do_not_stop_later_bids(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    server = Server(data_dir, env={"AEX_REQUEST_TIMEOUT_S": str(TIMEOUT_S)}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            work_id = submit_work(client, consumer(client), bid_window_seconds=300)["work_id"]
            agents = [provider(client) for _ in range(3)]
            answers: dict[int, int] = {}

            def send(n: int) -> None:
                with httpx.Client(base_url=server.url, timeout=30) as own:
                    answers[n] = bid(own, agents[n], work_id, price=100 + n).status_code

            with write_lock_held(data_dir / DATABASE_FILE):
                # The first bid's write is taken by the writer, which waits for the lock; the
                # second queues behind it. Both callers time out.
                first = threading.Thread(target=send, args=(0,))
                first.start()
                time.sleep(TIMEOUT_S / 2)  # the writer has taken the first and waits
                second = threading.Thread(target=send, args=(1,))
                second.start()
                time.sleep(STALL_S)
            first.join(timeout=30)
            second.join(timeout=30)
            assert answers == {0: 504, 1: 504}

            later = bid(client, agents[2], work_id, price=150)
            assert later.status_code == 201, later.text
            # The write already taken committed once the lock was gone (its caller had its
            # 504 before); the queued one, whose caller had gone, was never written.
            written = [
                client.get("/v1/bids", headers=agent.headers).json()["data"] for agent in agents
            ]
            assert [len(bids) for bids in written] == [1, 0, 1]
    finally:
        server.stop()


def test_writes_behind_a_lock_held_past_the_busy_timeout_answer_503_and_later_ones_go_through(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = {"AEX_SQLITE_BUSY_TIMEOUT_S": "0.3", "AEX_REQUEST_TIMEOUT_S": "10"}
    server = Server(data_dir, env=env).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            tenant = consumer(client, funds="1000")
            work_id = submit_work(client, tenant, bid_window_seconds=300)["work_id"]
            agent = provider(client)
            deposit = {"tenant_id": tenant.tenant_id, "amount": "5", "currency": "USD"}
            before = balance(client, tenant)

            with write_lock_held(data_dir / DATABASE_FILE):
                started_s = time.monotonic()
                refused = [
                    client.post("/v1/deposits", json=deposit, headers=tenant.headers),
                    bid(client, agent, work_id, price=120),
                ]
                waited_s = time.monotonic() - started_s
            for answer in refused:
                assert answer.status_code == 503, answer.text
                assert answer.json()["type"].endswith("/dependency-unavailable")
                assert answer.headers["retry-after"] == "1"
            assert waited_s < 5  # the busy timeout, not the request timeout

            assert balance(client, tenant) == before  # nothing of the deposit written
            assert client.get("/v1/bids", headers=agent.headers).json()["data"] == []
            again = client.post("/v1/deposits", json=deposit, headers=tenant.headers)
            assert again.status_code == 201, again.text
            assert bid(client, agent, work_id, price=120).status_code == 201
            available, held = balance(client, tenant)
            assert (Decimal(available), held) == (Decimal(before[0]) + 5, before[1])
    finally:
        server.stop()
