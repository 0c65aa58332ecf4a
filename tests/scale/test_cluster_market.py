"""The market on two server processes sharing PostgreSQL, Redis and NATS JetStream: every bid
window closed by exactly one process, every contract settled exactly once under 200 concurrent
completions on both and paid out exactly once by the two payout sweepers, money conserved, a
provider's stream on one process hearing the award made on the other, an undeliverable webhook
delivered by one process only, then dead-lettered on NATS once, and a delivery whose process died
taken over by exactly one other."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import nats
import pytest

from aex.core.fees import PLATFORM_FEE_BPS, split_fee
from aex.core.market import DISPUTE_WINDOW_MS
from serve.notifications.webhooks import WEBHOOK_ATTEMPTS_MAX
from tests.scale.conftest import cluster
from tests.scale.test_outbox_relay import delete_streams
from tests.serve.conftest import sign_up
from tests.serve.market_helpers import (
    OPERATOR,
    Provider,
    balance,
    bid,
    complete,
    consumer,
    platform_revenue,
    provider,
    submit_work,
    wait_for_status,
)
from tests.serve.server import Backend, Server

pytestmark = pytest.mark.services

NATS_URL = "nats://127.0.0.1:4222"
CONTRACTS = 100  # completed twice each, once on each process: 200 concurrent settlements
PRICE_MINOR = 10_000


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Backend, list[Server], str]]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    env = {
        "AEX_NATS_URL": NATS_URL,
        "AEX_NATS_PREFIX": prefix,
        "AEX_WINDOW_POLL_MS": "50",
        "AEX_WEBHOOK_BACKOFF_MS": "20",
        # Far beyond any gap between a delivery's writes here (backoff at most 160 ms), even on a
        # loaded machine: no live delivery is taken over (the takeover test makes one stale).
        "AEX_WEBHOOK_LEASE_MS": "2000",
    }
    try:
        with cluster(tmp_path_factory.mktemp("market-cluster"), env) as (backend, servers):
            yield backend, servers, prefix
    finally:
        asyncio.run(delete_streams(prefix))


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def test_each_window_closes_once_and_each_contract_settles_once_across_two_processes(
    pair: tuple[Backend, list[Server], str],
) -> None:
    backend, servers, _ = pair
    clients = [_client(server) for server in servers]
    acme = consumer(clients[0], funds="100000", plan="ENTERPRISE")  # 100 concurrent tasks
    agents = [provider(clients[n % 2]) for n in range(4)]
    revenue_before = Decimal(platform_revenue(clients[0]))
    works = []
    for n in range(CONTRACTS):  # submitted and bid on both processes in turn
        work = submit_work(clients[n % 2], acme, bid_window_seconds=5)
        assert bid(clients[(n + 1) % 2], agents[n % 4], work["work_id"], 100).status_code == 201
        works.append(work["work_id"])
    # Both processes' closers poll every 50 ms: each window must be closed by one of them.
    awarded = [wait_for_status(clients[0], acme, w, {"AWARDED"}, timeout_s=60) for w in works]
    contracts = {a["contract_id"]: agents[n % 4] for n, a in enumerate(awarded)}
    assert len(contracts) == CONTRACTS

    def settle(item: tuple[int, tuple[str, Provider]]) -> tuple[str, int]:
        n, (contract_id, agent) = item
        with _client(servers[n % 2]) as http:
            return contract_id, complete(http, agent, contract_id).status_code

    attempts = [(n, c) for n, c in enumerate(list(contracts.items()) * 2)]
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(settle, attempts))
    by_contract: dict[str, list[int]] = {}
    for contract_id, status in results:
        by_contract.setdefault(contract_id, []).append(status)
    assert all(sorted(statuses) == [200, 409] for statuses in by_contract.values()), by_contract

    fee_minor = split_fee(PRICE_MINOR, fee_bps=PLATFORM_FEE_BPS)[0]
    # Settled: charged once each, in escrow until the dispute window ends. Time control: the
    # settlements move 72 h into the past, and both processes' sweepers race to pay them out.
    assert balance(clients[1], acme) == (f"{100_000 - CONTRACTS * 100}.00", f"{CONTRACTS * 100}.00")
    with backend.market_db(servers[0].data_dir) as db:
        db.run(
            lambda session: session.connection.execute(
                "UPDATE contracts SET settled_at_ms = settled_at_ms - ?"
                " WHERE consumer_tenant_id = ?",
                (DISPUTE_WINDOW_MS + 1, acme.tenant_id),
            )
        )
        deadline = time.monotonic() + 60
        while db.read(
            "SELECT count(*) FROM contracts WHERE consumer_tenant_id = ?"
            " AND paid_out_at_ms IS NULL",
            (acme.tenant_id,),
        )[0][0]:
            assert time.monotonic() < deadline, "payouts did not run"
            time.sleep(0.1)
    assert balance(clients[1], acme) == (f"{100_000 - CONTRACTS * 100}.00", "0.00")
    revenue = Decimal(platform_revenue(clients[1])) - revenue_before
    assert revenue == Decimal(CONTRACTS * fee_minor) / 100
    for agent in agents:
        payout = (CONTRACTS // 4) * (PRICE_MINOR - fee_minor)
        assert balance(clients[0], agent.owner) == (f"{Decimal(payout) / 100:.2f}", "0.00")
    with backend.market_db(servers[0].data_dir) as db:
        counts = Counter(
            (kind, subject)
            for kind, subject in db.read(
                "SELECT type, subject_id FROM outbox WHERE type IN"
                " ('work.bid_window_closed', 'contract.awarded', 'settlement.completed')"
            )
        )
        captures = db.read(
            "SELECT count(*) FROM journal_entries WHERE kind = 'capture' AND operation_id IN"
            " (SELECT 'capture-' || hold_id FROM contracts WHERE consumer_tenant_id = ?)",
            (acme.tenant_id,),
        )[0][0]
    assert captures == CONTRACTS
    assert all(counts[("work.bid_window_closed", w)] == 1 for w in works)
    assert all(counts[("settlement.completed", c)] == 1 for c in contracts)
    assert sum(1 for kind, _ in counts if kind == "contract.awarded") == CONTRACTS
    with backend.ledger(servers[0].data_dir) as ledger:
        assert set(ledger.totals_by_currency().values()) == {0}
        assert ledger.wallet_mismatches() == []
    for client in clients:
        client.close()


def test_a_stream_on_one_process_hears_the_award_made_on_the_other(
    pair: tuple[Backend, list[Server], str],
) -> None:
    _, servers, _ = pair
    near, far = _client(servers[0]), _client(servers[1])
    acme, agent = consumer(far), provider(far)
    heard: list[dict[str, Any]] = []
    ready = threading.Event()

    def listen() -> None:
        headers = {**agent.headers, "Accept": "text/event-stream"}
        with (
            httpx.Client(base_url=servers[0].url, timeout=30) as http,
            http.stream("GET", "/v1/notifications/stream", headers=headers) as stream,
        ):
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                    if event == "ready":
                        ready.set()
                elif line.startswith("data:") and event == "contract.awarded":
                    heard.append(json.loads(line.split(":", 1)[1]))
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert ready.wait(15)
    work = submit_work(far, acme, bid_window_seconds=300)
    assert bid(far, agent, work["work_id"], 100).status_code == 201
    closed = far.post(f"/v1/admin/work/{work['work_id']}/close", headers=OPERATOR)
    assert closed.json()["status"] == "AWARDED"
    listener.join(timeout=15)
    assert heard, "the award committed on one process did not reach the stream on the other"
    assert heard[0]["payload"]["contract_id"] == closed.json()["contract_id"]
    near.close()
    far.close()


class _FailingReceiver:
    """A webhook endpoint that answers `status` (500: always failing), counting the POSTs per
    event id."""

    def __init__(self, status: int = 500) -> None:
        self.posts: Counter[str] = Counter()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                receiver.posts[self.headers["x-aex-event-id"]] += 1
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"


def _hooked_provider(server: Server, endpoint: str, category: str) -> dict[str, Any]:
    with _client(server) as http:
        owner = sign_up(http, "Hooked", "PROVIDER")
        body = {
            "name": "HookBot",
            "type": "AI_AGENT",
            "capabilities": ["code_review"],
            "category": category,
            "endpoint": endpoint,
        }
        created: dict[str, Any] = http.post(
            "/v1/providers", json=body, headers=owner.headers
        ).json()
        key = {"X-API-Key": created["api_key"]}
        subscription = {"provider_id": created["provider_id"], "categories": [category]}
        assert http.post("/v1/subscriptions", json=subscription, headers=key).status_code == 201
    return created


def test_an_undeliverable_webhook_is_tried_by_one_process_and_dead_lettered_once(
    pair: tuple[Backend, list[Server], str],
) -> None:
    _, servers, prefix = pair
    receiver = _FailingReceiver()
    try:
        created = _hooked_provider(servers[0], receiver.url, "TECHNOLOGY")
        with _client(servers[1]) as http:
            work = submit_work(http, consumer(http), bid_window_seconds=300)
        subject = f"{prefix}.aex.notification.dead_lettered.{created['provider_id']}"
        letters = asyncio.run(_dead_letters(prefix, subject, timeout_s=30))
        assert len(letters) == 1, letters
        letter = letters[0]
        assert letter["payload"]["event"]["payload"]["work_id"] == work["work_id"]
        assert letter["payload"]["attempts"] == WEBHOOK_ATTEMPTS_MAX
        # Both processes saw the event; one delivered it: the attempts were made once, not twice.
        original = letter["payload"]["event"]["event_id"]
        assert receiver.posts[original] == WEBHOOK_ATTEMPTS_MAX
    finally:
        receiver.server.shutdown()


def test_a_delivery_whose_process_died_is_taken_over_by_exactly_one_other(
    pair: tuple[Backend, list[Server], str],
) -> None:
    backend, servers, _ = pair
    receiver = _FailingReceiver(status=204)
    try:
        created = _hooked_provider(servers[0], receiver.url, "LEGAL")
        with _client(servers[1]) as http:
            submit_work(http, consumer(http), category="LEGAL", bid_window_seconds=300)
        _wait_for(lambda: sum(receiver.posts.values()) == 1)
        (event_id,) = receiver.posts
        # As if the delivering process had made attempt 1 and died before recording it: the
        # record stays RETRYING, untouched. Both processes sweep; one takes it over.
        with backend.market_db(servers[0].data_dir) as db:
            db.run(
                lambda session: session.connection.execute(
                    "UPDATE webhook_deliveries SET status = 'RETRYING', attempts = 1,"
                    " updated_at_ms = 0 WHERE event_id = ? AND provider_id = ?",
                    (event_id, created["provider_id"]),
                )
            )
            _wait_for(lambda: receiver.posts[event_id] == 2)
            time.sleep(
                1.5
            )  # three sweeps (a quarter lease, 500 ms): a second taker would have come
            assert receiver.posts[event_id] == 2
            rows = db.read(
                "SELECT status, attempts FROM webhook_deliveries WHERE event_id = ?", (event_id,)
            )
        assert rows == [("DELIVERED", 2)]
    finally:
        receiver.server.shutdown()


def _wait_for(condition: Any, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


async def _dead_letters(prefix: str, subject: str, *, timeout_s: float) -> list[dict[str, Any]]:
    """The dead letters stored on the NOTIFICATIONS stream for `subject`, once one has arrived
    (and a further moment, for a duplicate to show up if there were one)."""
    connection = await nats.connect(NATS_URL, connect_timeout=2)
    try:
        js = connection.jetstream()
        stream = f"{prefix}_NOTIFICATIONS"
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                info = await js.stream_info(stream)
                if info.state.messages > 0:
                    break
            assert time.monotonic() < deadline, "no dead letter reached JetStream"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        info = await js.stream_info(stream)
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(stream, seq)
            if message.subject == subject and message.data is not None:
                found.append(json.loads(message.data))
        return found
    finally:
        await connection.close()
