"""Events: provider notifications over server-sent events, the outbox, Prometheus metrics."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import httpx

from tests.serve.market_helpers import (
    Provider,
    bid,
    close_now,
    complete,
    consumer,
    provider,
    submit_work,
)
from tests.serve.server import OPERATOR_KEY, Server


def sse_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    name, data = "message", ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data += line.split(":", 1)[1].strip()
        elif line == "" and data:
            yield name, json.loads(data)
            name, data = "message", ""


def listen(server: Server, agent: Provider) -> queue.Queue[tuple[str, dict[str, Any]]]:
    heard: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    ready = threading.Event()

    def run() -> None:
        with httpx.Client(base_url=server.url, timeout=None) as http:
            try:
                with http.stream("GET", "/v1/notifications/stream", headers=agent.headers) as s:
                    assert s.status_code == 200
                    for name, body in sse_events(s):
                        if name == "ready":
                            ready.set()
                            continue
                        heard.put((name, body))
            except httpx.HTTPError:
                return  # the server stopped at the end of the session

    threading.Thread(target=run, daemon=True).start()
    assert ready.wait(10)
    return heard


def next_named(heard: queue.Queue[tuple[str, dict[str, Any]]], name: str) -> dict[str, Any]:
    while True:
        got, body = heard.get(timeout=10)
        if got == name:
            return body


def test_providers_hear_matching_work_awards_and_losses(
    server: Server, client: httpx.Client
) -> None:
    acme, winner, loser = consumer(client), provider(client), provider(client)
    elsewhere = provider(client, categories=("FINANCE",))
    heard = {agent.provider_id: listen(server, agent) for agent in (winner, loser, elsewhere)}
    work = submit_work(client, acme)
    for agent in (winner, loser):
        published = next_named(heard[agent.provider_id], "work.submitted")
        assert published["payload"]["work_id"] == work["work_id"]
    bid(client, winner, work["work_id"], 80)
    bid(client, loser, work["work_id"], 190)
    contract_id = close_now(client, work["work_id"])["contract_id"]
    awarded = next_named(heard[winner.provider_id], "contract.awarded")
    assert awarded["payload"]["contract_id"] == contract_id
    lost = next_named(heard[loser.provider_id], "bid.lost")
    assert lost["payload"]["work_id"] == work["work_id"]
    complete(client, winner, contract_id)
    settled = next_named(heard[winner.provider_id], "settlement.completed")
    assert settled["payload"]["payout"] == {"amount": "68.00", "currency": "USD"}
    assert heard[elsewhere.provider_id].empty()


def test_the_stream_needs_a_provider_key(client: httpx.Client) -> None:
    acme = consumer(client, funds=None)
    response = client.get("/v1/notifications/stream", headers=acme.headers)
    assert response.status_code == 403
    assert client.get("/v1/notifications/stream").status_code == 401


def test_metrics_count_bids_awards_settlements_gmv_and_fees(client: httpx.Client) -> None:
    acme, bot = consumer(client), provider(client)
    work = submit_work(client, acme)
    bid(client, bot, work["work_id"], 100)
    complete(client, bot, close_now(client, work["work_id"])["contract_id"])
    exposition = client.get("/metrics", headers={"X-API-Key": OPERATOR_KEY})
    assert exposition.status_code == 200
    text = exposition.text
    for name in (
        "aex_http_requests_total",
        "aex_http_request_duration_seconds_bucket",
        "aex_bids_submitted_total",
        "aex_contracts_awarded_total",
        "aex_settlements_completed_total",
        'aex_gmv_total{currency="USD"}',
        'aex_platform_fees_total{currency="USD"}',
    ):
        assert name in text, name
