"""One /metrics scrape shows the whole node under `aex serve --workers 2`: a real server with two
uvicorn worker processes on loopback, requests spread over both (each opens its own
connection), and the scrape's counts are the node's, not one worker's. The market's histograms
(window-close lag, settlement latency) are observed once per event, by the process that
committed it, whichever worker the scrape lands on."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from aex.commands.serve import METRICS_DIR_NAME
from serve.notifications.events import SETTLEMENT_LATENCY_BUCKETS_S, WINDOW_CLOSE_LAG_BUCKETS_S
from tests.serve.market_helpers import (
    OPERATOR,
    bid,
    complete,
    consumer,
    provider,
    submit_work,
    wait_for_status,
)
from tests.serve.server import Server

REQUESTS = 60


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data", args=("--workers", "2")).start()
    try:
        yield server
    finally:
        server.stop()


def scrape(server: Server) -> list[Sample]:
    response = httpx.get(server.url + "/metrics", headers=OPERATOR, timeout=10)
    assert response.status_code == 200, response.text
    return [s for family in text_string_to_metric_families(response.text) for s in family.samples]


def total(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s for s in samples if s.name == name and labels.items() <= s.labels.items()]
    return sum(s.value for s in found)


def buckets(samples: list[Sample], name: str) -> list[float]:
    return sorted(float(s.labels["le"]) for s in samples if s.name == f"{name}_bucket")


def worker_pids(data_dir: Path) -> set[str]:
    """The processes that counted something (prometheus_client writes counter_<pid>.db)."""
    return {path.stem.split("_", 1)[1] for path in (data_dir / METRICS_DIR_NAME).glob("counter_*")}


def ready(server: Server) -> int:
    # A connection of its own per request: the kernel hands connections to either worker.
    return httpx.get(server.url + "/ready", timeout=10).status_code


def test_one_scrape_counts_the_requests_every_worker_served(node: Server) -> None:
    before = total(scrape(node), "aex_http_requests_total", route="/ready")
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda _: ready(node), range(REQUESTS)))
    assert codes == [200] * REQUESTS
    assert len(worker_pids(node.data_dir)) >= 2, "the requests landed on one worker only"
    for _ in range(5):  # whichever worker answers the scrape, it shows both
        assert total(scrape(node), "aex_http_requests_total", route="/ready") == before + REQUESTS


def test_market_histograms_count_each_award_and_settlement_once_across_workers(
    node: Server,
) -> None:
    with httpx.Client(base_url=node.url, timeout=10) as client:
        acme, agent = consumer(client), provider(client)
        work = submit_work(client, acme, bid_window_seconds=5)
        assert bid(client, agent, work["work_id"]).status_code == 201
        awarded = wait_for_status(client, acme, work["work_id"], {"AWARDED"}, timeout_s=30)
        assert complete(client, agent, awarded["contract_id"]).status_code == 200
    samples = scrape(node)
    # Each worker tails every outbox event: counted by the committer, each counts once.
    assert total(samples, "aex_contracts_awarded_total") == 1
    assert total(samples, "aex_settlements_completed_total") == 1
    assert total(samples, "aex_window_close_lag_seconds_count") == 1
    lag = total(samples, "aex_window_close_lag_seconds_sum")
    assert 0 <= lag < 5, lag  # the closer polls every AEX_WINDOW_POLL_MS (250 ms)
    assert total(samples, "aex_settlement_latency_seconds_count") == 1
    assert 0 <= total(samples, "aex_settlement_latency_seconds_sum") < 30
    assert buckets(samples, "aex_window_close_lag_seconds") == [
        *WINDOW_CLOSE_LAG_BUCKETS_S,
        float("inf"),
    ]
    assert buckets(samples, "aex_settlement_latency_seconds") == [
        *SETTLEMENT_LATENCY_BUCKETS_S,
        float("inf"),
    ]
    # Cumulative buckets: the one observation is in every bucket from its own up to +Inf.
    by_le = {
        float(s.labels["le"]): s.value
        for s in samples
        if s.name == "aex_window_close_lag_seconds_bucket"
    }
    assert by_le == {le: (1.0 if le >= lag else 0.0) for le in by_le}
