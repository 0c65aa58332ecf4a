"""A stalled database must not stop the market for good (serve/stores/market_db.py, the SQLite
group-commit writer). Another process holds the file's write lock for longer than the request
timeout: the bids waiting on it answer 504, and once the lock is gone the market takes writes
again. (It did not: the writer thread set the answer of a bid whose caller had timed out,
raised, and ended, and every later bid answered 504.)"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx

from serve.stores.market_db import DATABASE_FILE
from tests.serve.market_helpers import bid, consumer, provider, submit_work
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

            holder = sqlite3.connect(data_dir / DATABASE_FILE, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long backup or CLI would
            try:
                # The first bid's write is taken by the writer, which waits for the lock; the
                # second queues behind it. Both callers time out.
                first = threading.Thread(target=send, args=(0,))
                first.start()
                time.sleep(TIMEOUT_S / 2)  # the writer has taken the first and waits
                second = threading.Thread(target=send, args=(1,))
                second.start()
                time.sleep(STALL_S)
            finally:
                holder.execute("ROLLBACK")
                holder.close()
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
