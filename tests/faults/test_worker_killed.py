"""A server process killed (SIGKILL) in the middle of a burst of settlements (contract
completions, each capturing its escrow), then restarted: every contract is either settled,
with its money moved, or not settled at all, with its escrow still held; every acknowledged
settlement is there; the ledger sums to zero and each wallet equals its postings.
(tests/serve/test_crash.py does the same for a deposit burst.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.serve.market_helpers import bid, close_now, complete, consumer, provider, submit_work
from tests.serve.server import Backend, Server

CONTRACTS = 12


def test_kill_9_mid_settlement_leaves_each_contract_settled_or_untouched(tmp_path: Path) -> None:
    backend = Backend("sqlite")
    server = Server(tmp_path / "data", env=backend.env)
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            buyer = consumer(client, plan="ENTERPRISE")
            agent = provider(client, plan="ENTERPRISE")
            contracts = []
            for _ in range(CONTRACTS):
                work_id = submit_work(client, buyer, bid_window_seconds=300)["work_id"]
                assert bid(client, agent, work_id).status_code == 201
                contracts.append(str(close_now(client, work_id)["contract_id"]))
        acknowledged: list[str] = []
        started = threading.Barrier(CONTRACTS + 1)

        def settle(contract_id: str) -> None:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                started.wait()
                try:
                    response = complete(http, agent, contract_id)
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    acknowledged.append(contract_id)

        threads = [threading.Thread(target=settle, args=(c,)) for c in contracts]
        for thread in threads:
            thread.start()
        started.wait()
        deadline = time.monotonic() + 10
        while not acknowledged and time.monotonic() < deadline:
            time.sleep(0.002)
        server.kill()  # SIGKILL while the other settlements are in flight
        for thread in threads:
            thread.join(timeout=15)
        assert acknowledged, "no settlement was acknowledged before the kill"

        server.start()  # same data directory, a fresh process
        with httpx.Client(base_url=server.url, timeout=30) as client:
            states = {
                contract_id: client.get(
                    f"/v1/contracts/{contract_id}", headers=buyer.headers
                ).json()["status"]
                for contract_id in contracts
            }
        assert {states[c] for c in acknowledged} == {"SETTLED"}
        assert set(states.values()) <= {"SETTLED", "AWARDED", "EXECUTING"}, states
    finally:
        server.stop()
    with backend.ledger(server.data_dir) as ledger:
        assert set(ledger.totals_by_currency().values()) == {0}
        assert ledger.wallet_mismatches() == []
