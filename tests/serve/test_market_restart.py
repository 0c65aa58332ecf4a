"""A window that ends while the server is down closes when it comes back, exactly once (on
each backend: the SQLite file, and PostgreSQL + Redis). The second server runs the production
setting, AEX_SCORING_ENGINE=compiled: the window falls due while its kernel is still warming, and
closes at once all the same (serve/market/evaluation.py scores with the numpy engine meanwhile)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.serve.market_helpers import (
    balance,
    bid,
    consumer,
    provider,
    submit_work,
    wait_for_status,
)
from tests.serve.server import Backend, Server


def test_restart_during_an_open_window_closes_it_on_start(
    tmp_path: Path, own_backend: Backend
) -> None:
    first = Server(tmp_path / "data", env=own_backend.env).start()
    try:
        with httpx.Client(base_url=first.url, timeout=30) as client:
            acme, bot = consumer(client), provider(client)
            work = submit_work(client, acme, bid_window_seconds=5)
            assert bid(client, bot, work["work_id"], 100).status_code == 201
    finally:
        first.kill()  # kill -9 while the window is open
    remaining_s = work["bid_window_closes_at_ms"] / 1000 - time.time()
    time.sleep(max(0.0, remaining_s + 0.2))
    compiled = {**own_backend.env, "AEX_SCORING_ENGINE": "compiled"}
    second = Server(tmp_path / "data", env=compiled).start()
    try:
        with httpx.Client(base_url=second.url, timeout=30) as client:
            awarded = wait_for_status(client, acme, work["work_id"], {"AWARDED"}, timeout_s=5)
            assert balance(client, acme) == ("9900.00", "100.00")
            evaluation = client.get(f"/v1/work/{work['work_id']}/evaluation", headers=acme.headers)
            assert [row["provider_id"] for row in evaluation.json()["bids"]] == [bot.provider_id]
            contract = client.get(f"/v1/contracts/{awarded['contract_id']}", headers=bot.headers)
            assert contract.json()["status"] == "AWARDED"
            # The production engine: the kernel warms on its thread and takes over.
            deadline = time.monotonic() + 60
            while client.get("/ready").json()["scoring_engine"] != "compiled":
                assert time.monotonic() < deadline, "the scoring kernel never warmed"
                time.sleep(0.1)
    finally:
        second.stop()
