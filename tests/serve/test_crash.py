"""`kill -9` during a deposit burst, then a restart: every acknowledged deposit is there, the
ledger still sums to zero, and every wallet equals the sum of its postings."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx

from tests.serve.market_helpers import every_row
from tests.serve.server import Backend, Server

WRITERS = 8


def test_kill_9_loses_no_acknowledged_deposit(tmp_path: Path, own_backend: Backend) -> None:
    server = Server(tmp_path / "data", env=own_backend.env).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            signed = client.post("/v1/tenants", json={"name": "Crash", "type": "CONSUMER"}).json()
        headers = {"X-API-Key": signed["api_key"]}
        body = {"tenant_id": signed["tenant_id"], "amount": "1.01", "currency": "USD"}
        acknowledged: list[str] = []
        stop = threading.Event()

        def writer() -> None:
            with httpx.Client(base_url=server.url, timeout=5) as http:
                while not stop.is_set():
                    key = {"Idempotency-Key": uuid.uuid4().hex}
                    try:
                        response = http.post("/v1/deposits", json=body, headers={**headers, **key})
                    except httpx.TransportError:
                        return
                    if response.status_code == 201:
                        acknowledged.append(response.json()["operation_id"])

        threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.kill()  # SIGKILL mid-burst
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        assert len(acknowledged) >= 40
        server.start()  # same port and data directory, a fresh process
        with httpx.Client(base_url=server.url) as client:
            history = every_row(client, "/v1/transactions", headers)
            stored = {row["operation_id"] for row in history}
            assert set(acknowledged) <= stored
            available = client.get("/v1/balance", headers=headers).json()["available"]
            assert Decimal(available) == Decimal("1.01") * len(stored)
    finally:
        server.stop()
    with own_backend.ledger(server.data_dir) as ledger:
        assert set(ledger.totals_by_currency().values()) == {0}
        assert ledger.wallet_mismatches() == []
