"""Two server processes on PostgreSQL + Redis: one shared rate limit, revocation seen at once
by the other process, money conserved under concurrent load across both, nothing
acknowledged lost when one is killed mid-burst, and requests still served with Redis gone."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.scale.conftest import cluster
from tests.serve.server import OPERATOR_KEY, TEST_ENV, Backend, Server, free_port

pytestmark = pytest.mark.services

# One cluster for all but the Redis-stopped test; a low per-tenant limit (a 6 s interval, so
# a refill never lands inside a test's burst even on a loaded machine) for the shared-limit
# test, so the other tests spread their load over many tenants.
PER_MINUTE = 10
BURST = 10
TENANTS = 25
MOVES = 8  # per tenant: within one tenant's burst


def sign_up(server: Server, name: str = "Acme") -> tuple[str, dict[str, str]]:
    response = httpx.post(server.url + "/v1/tenants", json={"name": name, "type": "BOTH"})
    assert response.status_code == 201, response.text
    body = response.json()
    return body["tenant_id"], {"X-API-Key": body["api_key"]}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Backend, list[Server]]]:
    env = {
        "AEX_RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
        "AEX_RATE_LIMIT_BURST": str(BURST),
        "AEX_ANONYMOUS_RATE_LIMIT_PER_MINUTE": "100000",
    }
    with cluster(tmp_path_factory.mktemp("pair"), env) as running:
        yield running


def test_two_processes_share_one_rate_limit_exactly(
    pair: tuple[Backend, list[Server]],
) -> None:
    _, servers = pair
    _, headers = sign_up(servers[0])
    nodes = itertools.cycle(servers)
    statuses = [
        httpx.get(next(nodes).url + "/v1/tenants/me", headers=headers).status_code
        for _ in range(BURST + 1)
    ]
    # GCRA allows `burst` requests at once, the next one is refused, whichever process answers.
    assert statuses == [200] * BURST + [429]


def test_a_key_revoked_on_one_process_is_refused_by_the_other_at_once(
    pair: tuple[Backend, list[Server]],
) -> None:
    first, second = pair[1]
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
    tenants = [sign_up(servers[n % 2], f"T{n}") for n in range(TENANTS)]
    # Per tenant: 4 deposits of 1.00 and 4 withdrawals of 1.70 racing on both processes, so
    # many withdrawals meet an empty or missing wallet (422, 404) and none may overdraw.
    work = [
        (n, tenant, kind)
        for n, (tenant, kind) in enumerate(
            (t, k) for t in tenants for k in ["deposit", "withdrawal"] * (MOVES // 2)
        )
    ]
    assert len(work) == 200

    def move(item: tuple[int, tuple[str, dict[str, str]], str]) -> tuple[str, str, int]:
        n, (tenant_id, headers), kind = item
        amount = "1.00" if kind == "deposit" else "1.70"
        body = {"tenant_id": tenant_id, "amount": amount, "currency": "USD"}
        with httpx.Client(base_url=servers[n % 2].url, timeout=30) as http:
            response = http.post(f"/v1/{kind}s", json=body, headers=headers)
        assert response.status_code in {201, 404, 422}, response.text  # 404: no wallet yet
        return tenant_id, kind, response.status_code

    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(move, work))
    with backend.ledger(servers[0].data_dir) as ledger:
        for tenant_id, _ in tenants:
            done = [k for t, k, status in results if t == tenant_id and status == 201]
            assert done.count("deposit") == MOVES // 2
            expected = 100 * done.count("deposit") - 170 * done.count("withdrawal")
            wallet = ledger.wallet(f"tenant:{tenant_id}:USD")
            assert wallet is not None
            assert wallet.available_minor == expected >= 0
        assert set(ledger.totals_by_currency().values()) == {0}
        assert ledger.wallet_mismatches() == []
    assert any(status == 422 for _, _, status in results)  # the race did meet empty wallets


def test_kill_9_of_one_process_loses_nothing_acknowledged(
    pair: tuple[Backend, list[Server]],
) -> None:
    backend, servers = pair
    victim, survivor = servers
    writers = [sign_up(survivor, f"Crash{n}") for n in range(8)]
    acknowledged: dict[str, list[str]] = {tenant_id: [] for tenant_id, _ in writers}
    stop = threading.Event()

    def writer(n: int) -> None:
        # Each writer its own tenant (its own rate-limit bucket), on both processes in turn.
        tenant_id, headers = writers[n]
        body = {"tenant_id": tenant_id, "amount": "1.01", "currency": "USD"}
        clients = [httpx.Client(base_url=server.url, timeout=5) for server in servers]
        for sent in itertools.count():
            if stop.is_set():
                break
            key = {"Idempotency-Key": uuid.uuid4().hex}
            try:
                response = clients[sent % 2].post(
                    "/v1/deposits", json=body, headers={**headers, **key}
                )
            except httpx.TransportError:
                continue  # the victim is gone: the acknowledged ones must all be there
            if response.status_code == 429:
                break
            if response.status_code == 201:
                acknowledged[tenant_id].append(response.json()["operation_id"])
        for client in clients:
            client.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(len(writers))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while sum(map(len, acknowledged.values())) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.kill()  # SIGKILL mid-burst; the survivor keeps serving
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    assert sum(map(len, acknowledged.values())) >= 40
    with backend.ledger(survivor.data_dir) as ledger:
        for tenant_id, operations in acknowledged.items():
            wallet_id = f"tenant:{tenant_id}:USD"
            stored = {row.operation_id for row in ledger.history(wallet_id, limit=500)}
            assert set(operations) <= stored
            wallet = ledger.wallet(wallet_id)
            assert wallet is not None
            assert wallet.available_minor == 101 * len(stored)
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
        with cluster(tmp_path, env, backend, processes=1) as (_, servers):
            _, headers = sign_up(servers[0])
            for server in servers:
                assert httpx.get(server.url + "/v1/tenants/me", headers=headers).is_success
            redis_server.terminate()
            redis_server.wait(timeout=10)
            for server in servers * 5:
                answer = httpx.get(server.url + "/v1/tenants/me", headers=headers)
                assert answer.status_code == 200  # fail-open
            logs = "".join(
                path.read_text(errors="replace") for path in tmp_path.glob("*/server-*.log")
            )
            assert "redis unavailable, failing open" in logs
            operator = {"X-API-Key": OPERATOR_KEY}
            exposition = httpx.get(servers[0].url + "/metrics", headers=operator).text
            counted = [
                line
                for line in exposition.splitlines()
                if line.startswith("aex_redis_fail_open_total{")
            ]
            assert counted, exposition[:500]
            assert all(float(line.rsplit(" ", 1)[1]) > 0 for line in counted)
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


def test_aex_serve_workers_runs_processes_behind_one_port(tmp_path: Path) -> None:
    # What `make run-cluster` runs: uvicorn workers (processes) sharing one listening socket.
    backend, port = Backend("postgres"), free_port()
    command = [sys.executable, "-m", "aex.cli", "serve", "--workers", "2", "--port", str(port)]
    environment = {**os.environ, **TEST_ENV, **backend.env}
    log = (tmp_path / "cluster.log").open("ab")
    process = subprocess.Popen(
        [*command, "--data-dir", str(tmp_path / "data")], env=environment, stderr=log
    )
    try:
        server = Server(tmp_path / "data", port=port)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(server.url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "cluster.log").read_text()
            assert time.monotonic() < deadline, "cluster did not start"
            time.sleep(0.1)
        _, headers = sign_up(server)
        with httpx.Client(base_url=server.url) as client:
            for _ in range(20):
                assert client.get("/v1/tenants/me", headers=headers).status_code == 200
        assert len(_children(process.pid)) >= 2
    finally:
        process.terminate()
        process.wait(timeout=20)
        backend.cleanup()


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found
