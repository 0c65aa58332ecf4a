"""PostgreSQL stopped (`pg_ctl stop -m immediate`: every backend killed, no checkpoint) under a
deposit and bid load on a real server, then started again: every acknowledged (201) deposit
and bid is there, requests while it is down fail fast with 503 `dependency-unavailable` and
`Retry-After`, and the same server process serves again once the breaker's probe finds
PostgreSQL back (no restart). A private PostgreSQL cluster on a free port, never the shared
one."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.engines import PrivatePostgres
from tests.serve.conftest import sign_up
from tests.serve.market_helpers import (
    OPERATOR,
    Provider,
    consumer,
    every_row,
    provider,
    submit_work,
)
from tests.serve.server import Server

DEPOSITORS = 3
DEPOSITS_PER_DEPOSITOR_MAX = 160
BIDDERS = 3
WORKS = 30
BID_PAUSE_S = 0.25
# A request while PostgreSQL is down is answered within this (the pool's wait while the
# breaker suspects PostgreSQL is 2 s; the open breaker answers at once).
FAIL_FAST_S = 4.0
DOWN_S = 3.0
RECOVERY_S = 20.0  # the breaker's 10 s open, then the probe
PROBLEM = "https://aex.dev/problems/dependency-unavailable"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    engine = PrivatePostgres()
    engine.start()
    yield engine
    engine.destroy()


class Load:
    """Deposit and bid writers; every acknowledged write, and every outage answer, recorded."""

    def __init__(self, server: Server, depositor: dict[str, str], tenant_id: str) -> None:
        self.server, self.depositor, self.tenant_id = server, depositor, tenant_id
        self.deposits: list[str] = []
        self.bids: list[tuple[str, str]] = []  # (work_id, bid_id)
        self.outage: list[tuple[int, float, str | None, str]] = []  # status, s, Retry-After, type
        self.other: list[int] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def _post(self, http: httpx.Client, path: str, body: object, headers: dict[str, str]) -> Any:
        started = time.monotonic()
        response = http.post(
            path, json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
        )
        elapsed = time.monotonic() - started
        if response.status_code >= 500:
            kind = response.json().get("type", "") if response.content else ""
            with self._lock:
                self.outage.append(
                    (response.status_code, elapsed, response.headers.get("Retry-After"), kind)
                )
        return response

    def deposit(self) -> None:
        body = {"tenant_id": self.tenant_id, "amount": "1.01", "currency": "USD"}
        with httpx.Client(base_url=self.server.url, timeout=30) as http:
            acknowledged = 0
            while acknowledged < DEPOSITS_PER_DEPOSITOR_MAX and not self.stop.is_set():
                response = self._post(http, "/v1/deposits", body, self.depositor)
                if response.status_code == 201:
                    acknowledged += 1
                    self.deposits.append(response.json()["operation_id"])
                elif response.status_code < 500:
                    self.other.append(response.status_code)
                time.sleep(0.01)

    def bid(self, agent: Provider, works: list[str]) -> None:
        with httpx.Client(base_url=self.server.url, timeout=30) as http:
            pending = list(works)
            while pending and not self.stop.is_set():
                work_id = pending[0]
                body = {
                    "work_id": work_id,
                    "provider_id": agent.provider_id,
                    "price": 100,
                    "confidence": 0.9,
                    "estimated_duration": "2h",
                    "sla": {"max_turnaround": "4h"},
                }
                response = self._post(http, "/v1/bids", body, agent.headers)
                if response.status_code == 201:
                    self.bids.append((work_id, response.json()["bid_id"]))
                    pending.pop(0)
                elif response.status_code < 500:
                    pending.pop(0)  # e.g. a retried bid that had committed: refused as a repeat
                    self.other.append(response.status_code)
                time.sleep(BID_PAUSE_S)  # bids go on through the outage and after it


def test_postgres_stopped_under_load_loses_no_acknowledged_write_and_fails_fast(
    tmp_path: Path, postgres: PrivatePostgres
) -> None:
    env = {"AEX_DATABASE_URL": postgres.url, "AEX_DATABASE_SCHEMA": "aex_fault_pg"}
    server = Server(tmp_path / "data", env=env)
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            depositor = sign_up(client, "Depositor", "CONSUMER")
            buyer = consumer(client, plan="ENTERPRISE")
            agents = [provider(client, plan="ENTERPRISE") for _ in range(BIDDERS)]
            works = [
                submit_work(client, buyer, bid_window_seconds=300)["work_id"] for _ in range(WORKS)
            ]
        load = Load(server, depositor.headers, depositor.tenant_id)
        threads = [threading.Thread(target=load.deposit) for _ in range(DEPOSITORS)]
        threads += [threading.Thread(target=load.bid, args=(agent, works)) for agent in agents]
        for thread in threads:
            thread.start()
        try:
            _wait(lambda: len(load.deposits) >= 20 and len(load.bids) >= 10, 20)
            deposits_before, bids_before = len(load.deposits), len(load.bids)
            postgres.stop("immediate")
            time.sleep(DOWN_S)
            with httpx.Client(base_url=server.url, timeout=30) as client:
                ready = client.get("/ready")
                assert ready.status_code == 503
                assert ready.json()["breakers"]["postgres"] == "OPEN"
                started = time.monotonic()
                refused = client.post(
                    "/v1/deposits",
                    json={"tenant_id": depositor.tenant_id, "amount": "1", "currency": "USD"},
                    headers=depositor.headers,
                )
                assert time.monotonic() - started < 1.0  # the open breaker: no wait at all
                assert refused.status_code == 503
                assert refused.headers["content-type"].startswith("application/problem+json")
                assert refused.json()["type"] == PROBLEM
                assert 1 <= int(refused.headers["Retry-After"]) <= 10
            postgres.start()
            _wait(lambda: len(load.deposits) > deposits_before + 10, RECOVERY_S)
            _wait(lambda: len(load.bids) > bids_before + BIDDERS, RECOVERY_S)
        finally:
            load.stop.set()
            for thread in threads:
                thread.join(timeout=40)
        assert server.process is not None
        assert server.process.poll() is None

        assert load.outage, "no request met the outage"
        for status, elapsed, retry_after, kind in load.outage:
            assert status == 503, (status, kind)
            assert kind == PROBLEM
            assert retry_after is not None
            assert 1 <= int(retry_after) <= 10
            assert elapsed < FAIL_FAST_S, elapsed
        assert set(load.other) <= {409, 422}, load.other

        with httpx.Client(base_url=server.url, timeout=30) as client:
            history = every_row(client, "/v1/transactions", depositor.headers)
            stored = {row["operation_id"] for row in history}
            assert set(load.deposits) <= stored
            available = client.get("/v1/balance", headers=depositor.headers).json()["available"]
            assert Decimal(available) == Decimal("1.01") * len(stored)
            for work_id in {work_id for work_id, _ in load.bids}:
                listed = every_row(client, f"/v1/work/{work_id}/bids", buyer.headers)
                ids = {row["bid_id"] for row in listed}
                assert {bid for w, bid in load.bids if w == work_id} <= ids
            ready = client.get("/ready").json()
            assert ready["breakers"]["postgres"] == "CLOSED"
            metrics = client.get("/metrics", headers=OPERATOR).text
            assert 'aex_circuit_breaker_state{dependency="postgres"} 0.0' in metrics
            assert 'aex_circuit_breaker_trips_total{dependency="postgres"}' in metrics
    finally:
        server.stop()


def _wait(condition: object, timeout_s: float) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
