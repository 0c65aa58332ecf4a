"""Two server processes on PostgreSQL + Redis: one shared rate limit, revocation seen at once
by the other process, money conserved under concurrent load across both, nothing
acknowledged lost when one is killed mid-burst, and requests still served with Redis gone."""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.scale.conftest import cluster
from tests.serve.server import TEST_DATABASE_URL, Backend, Server, free_port

pytestmark = pytest.mark.services

PER_MINUTE = 60
BURST = 5


def sign_up(server: Server, name: str = "Acme") -> tuple[str, dict[str, str]]:
    response = httpx.post(server.url + "/v1/tenants", json={"name": name, "type": "BOTH"})
    assert response.status_code == 201, response.text
    body = response.json()
    return body["tenant_id"], {"X-API-Key": body["api_key"]}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    env = {
        "AEX_RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
        "AEX_RATE_LIMIT_BURST": str(BURST),
        "AEX_ANONYMOUS_RATE_LIMIT_PER_MINUTE": "100000",
    }
    with cluster(tmp_path_factory.mktemp("limited"), env) as (_, servers):
        yield servers


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Backend, list[Server]]]:
    with cluster(tmp_path_factory.mktemp("pair")) as running:
        yield running


def test_two_processes_share_one_rate_limit_exactly(limited: list[Server]) -> None:
    _, headers = sign_up(limited[0])
    nodes = itertools.cycle(limited)
    statuses = [
        httpx.get(next(nodes).url + "/v1/tenants/me", headers=headers).status_code
        for _ in range(BURST + 1)
    ]
    # GCRA allows `burst` requests at once, the next one is refused, whichever process answers.
    assert statuses == [200] * BURST + [429]


def test_a_key_revoked_on_one_process_is_refused_by_the_other_at_once(
    limited: list[Server],
) -> None:
    first, second = limited
    _, headers = sign_up(first)
    created = httpx.post(first.url + "/v1/keys", headers=headers).json()
    extra = {"X-API-Key": created["api_key"]}
    assert httpx.get(second.url + "/v1/tenants/me", headers=extra).status_code == 200  # cached
    revoked = httpx.delete(first.url + f"/v1/keys/{created['key_id']}", headers=headers)
    assert revoked.status_code == 200
    refused = httpx.get(second.url + "/v1/tenants/me", headers=extra)
    assert refused.status_code == 401
    assert refused.json()["type"].endswith("/credential-revoked")


def test_200_concurrent_movements_across_two_processes_conserve_money(
    pair: tuple[Backend, list[Server]],
) -> None:
    backend, servers = pair
    tenants = [sign_up(servers[0], f"T{n}") for n in range(4)]
    # Per tenant: 25 deposits of 1.00 and 25 withdrawals of 0.70 racing on both processes,
    # so some withdrawals meet an empty or missing wallet (422, 404) and none overdraws.
    work = [
        (n, tenant, kind)
        for n, (tenant, kind) in enumerate(
            (t, k) for t in tenants for k in ["deposit", "withdrawal"] * 25
        )
    ]
    assert len(work) == 200

    def move(item: tuple[int, tuple[str, dict[str, str]], str]) -> tuple[str, str, int]:
        n, (tenant_id, headers), kind = item
        amount = "1.00" if kind == "deposit" else "0.70"
        body = {"tenant_id": tenant_id, "amount": amount, "currency": "USD"}
        with httpx.Client(base_url=servers[n % 2].url, timeout=30) as http:
            response = http.post(f"/v1/{kind}s", json=body, headers=headers)
        assert response.status_code in {201, 404, 422}, response.text  # 404: no wallet yet
        return tenant_id, kind, response.status_code

    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(move, work))
    for tenant_id, headers in tenants:
        deposits = sum(1 for t, k, s in results if t == tenant_id and k == "deposit" and s == 201)
        withdrawals = sum(
            1 for t, k, s in results if t == tenant_id and k == "withdrawal" and s == 201
        )
        assert deposits == 25
        expected = Decimal("1.00") * deposits - Decimal("0.70") * withdrawals
        answer = httpx.get(servers[1].url + "/v1/balance", headers=headers).json()
        assert Decimal(answer["available"]) == expected >= 0
    with backend.ledger(servers[0].data_dir) as ledger:
        assert set(ledger.totals_by_currency().values()) == {0}
        assert ledger.wallet_mismatches() == []
    with psycopg.connect(TEST_DATABASE_URL) as connection:
        negative = connection.execute(
            f"SELECT count(*) FROM {backend.schema}.wallets"
            " WHERE available_minor < 0 OR held_minor < 0"
        ).fetchone()
    assert negative == (0,)


def test_kill_9_of_one_process_loses_nothing_acknowledged(
    pair: tuple[Backend, list[Server]],
) -> None:
    backend, servers = pair
    victim, survivor = servers
    tenant_id, headers = sign_up(survivor, "Crash")
    body = {"tenant_id": tenant_id, "amount": "1.01", "currency": "USD"}
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer(server: Server) -> None:
        with httpx.Client(base_url=server.url, timeout=5) as http:
            while not stop.is_set():
                key = {"Idempotency-Key": uuid.uuid4().hex}
                try:
                    response = http.post("/v1/deposits", json=body, headers={**headers, **key})
                except httpx.TransportError:
                    if server is victim:
                        return
                    continue
                if response.status_code == 201:
                    acknowledged.append(response.json()["operation_id"])

    threads = [threading.Thread(target=writer, args=(servers[n % 2],)) for n in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.kill()  # SIGKILL mid-burst; the survivor keeps serving
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    assert len(acknowledged) >= 40
    with httpx.Client(base_url=survivor.url) as client:
        history = client.get("/v1/transactions", params={"limit": 500}, headers=headers).json()
        stored = {row["operation_id"] for row in history}
        assert set(acknowledged) <= stored
        available = client.get("/v1/balance", headers=headers).json()["available"]
        assert Decimal(available) == Decimal("1.01") * len(stored)
    with backend.ledger(survivor.data_dir) as ledger:
        assert set(ledger.totals_by_currency().values()) == {0}
        assert ledger.wallet_mismatches() == []


def test_with_redis_stopped_requests_are_still_served(tmp_path: Path) -> None:
    # A private redis-server for this test only: the system Redis on 6379 is never touched.
    port = free_port()
    redis_server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        backend = Backend("postgres")
        env = {"AEX_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        with cluster(tmp_path, env, backend) as (_, servers):
            _, headers = sign_up(servers[0])
            for server in servers:
                assert httpx.get(server.url + "/v1/tenants/me", headers=headers).is_success
            redis_server.terminate()
            redis_server.wait(timeout=10)
            for server in servers * 3:
                answer = httpx.get(server.url + "/v1/tenants/me", headers=headers)
                assert answer.status_code == 200  # fail-open
            logs = "".join(
                path.read_text(errors="replace") for path in tmp_path.glob("*/server-*.log")
            )
            assert "redis unavailable, failing open" in logs
    finally:
        if redis_server.poll() is None:
            redis_server.kill()
            redis_server.wait(timeout=10)


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            import socket

            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("redis-server did not start")
