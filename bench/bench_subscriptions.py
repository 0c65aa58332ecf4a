"""`python -m bench bench_subscriptions`: POST /v1/work latency with few and many subscriptions.

Issue 11 found every `POST /v1/work` going from 4.8 ms to 207 ms (median) once one provider
held 4,000 subscriptions: the matching scanned and parsed every subscription inside the write
transaction. This benchmark starts a real server (SQLite, loopback, one worker), registers 40
providers under one BUSINESS tenant, and measures the median and p90 of sequential
`POST /v1/work` (category TECHNOLOGY) with 10 subscriptions in all (10 providers on
TECHNOLOGY), then with 4,000 (100 per provider; the other 3,990 on other categories, so the
same 10 providers are notified in both cases). Prints one line per case; the figures are in
docs/security-notes/sec-events.md.
"""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.bench_api import OPERATOR_KEY, _start_aex
from bench.harness import Figure

REQUESTS = int(os.environ.get("AEX_BENCH_REQUESTS", "200"))
WARM_UP_REQUESTS = 30
PROVIDERS = 40
CONSUMERS = 6  # 2 x (30 + 200) open works, at most 100 each (ENTERPRISE's concurrent tasks)
SUBSCRIPTIONS_PER_PROVIDER = 100  # 40 x 100 = 4,000
OPERATOR = {"X-API-Key": OPERATOR_KEY}
# Sign-ups and 460 submissions from one address: no anonymous or daily limit in the way.
NO_QUOTAS = {
    "AEX_ANONYMOUS_RATE_LIMIT_PER_MINUTE": "100000000",
    "AEX_REQUESTS_PER_DAY": "100000000",
}
WORK = {
    "title": "Review a codebase",
    "category": "TECHNOLOGY",
    "budget": {"min": 1, "max": 2, "currency": "USD"},
    "requirements": {"language": "Go"},
    "success_criteria": [{"metric": "coverage", "threshold": 0.8}],
    "bid_window_seconds": 300,
}


def _start(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    return _start_aex(data_dir, NO_QUOTAS)


def _tenant(http: httpx.Client, kind: str) -> dict[str, str]:
    created = http.post("/v1/tenants", json={"name": "Bench", "type": kind})
    assert created.status_code == 201, created.text
    body: dict[str, str] = created.json()
    return body


def _providers(http: httpx.Client) -> list[dict[str, str]]:
    owner = _tenant(http, "PROVIDER")
    plan = http.put(
        f"/v1/admin/tenants/{owner['tenant_id']}/plan", json={"plan": "BUSINESS"}, headers=OPERATOR
    )
    assert plan.status_code == 200, plan.text
    body = {"name": "Bot", "type": "AI_AGENT", "capabilities": ["x"], "category": "TECHNOLOGY"}
    found = []
    for _ in range(PROVIDERS):
        created = http.post("/v1/providers", json=body, headers={"X-API-Key": owner["api_key"]})
        assert created.status_code == 201, created.text
        found.append(created.json())
    return found


def _subscribe(http: httpx.Client, provider: dict[str, str], category: str) -> None:
    body = {"provider_id": provider["provider_id"], "categories": [category]}
    made = http.post("/v1/subscriptions", json=body, headers={"X-API-Key": provider["api_key"]})
    assert made.status_code == 201, made.text


def _consumers(http: httpx.Client) -> list[dict[str, str]]:
    # Open work counts against a plan's concurrent tasks (ENTERPRISE: 100): enough consumers
    # that both rounds' windows, all open for 300 s, fit.
    found = []
    for _ in range(CONSUMERS):
        consumer = _tenant(http, "CONSUMER")
        plan = http.put(
            f"/v1/admin/tenants/{consumer['tenant_id']}/plan",
            json={"plan": "ENTERPRISE"},
            headers=OPERATOR,
        )
        assert plan.status_code == 200, plan.text
        deposit = {"tenant_id": consumer["tenant_id"], "amount": "100000", "currency": "USD"}
        headers = {"X-API-Key": consumer["api_key"]}
        assert http.post("/v1/deposits", json=deposit, headers=headers).status_code == 201
        found.append(consumer)
    return found


def _measure(http: httpx.Client, consumers: list[dict[str, str]]) -> tuple[float, float]:
    turns = itertools.cycle([{"X-API-Key": consumer["api_key"]} for consumer in consumers])
    for _ in range(WARM_UP_REQUESTS):  # connection, caches and the allocator settle first
        assert http.post("/v1/work", json=WORK, headers=next(turns)).status_code == 201
    timings = []
    for _ in range(REQUESTS):
        headers = next(turns)
        started = time.perf_counter()
        response = http.post("/v1/work", json=WORK, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 201, response.text
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.9)]


def main(argv: list[str] | None = None) -> list[Figure]:
    """Work submissions per second with 4,000 subscriptions, against the same with 10 (the
    baseline, same server, same run): 1.0 is flat, lower means matching grew with the market."""
    del argv  # no options: sizes from AEX_BENCH_REQUESTS
    data_dir = Path(tempfile.mkdtemp(prefix="aex-bench-subs-"))
    process, url = _start(data_dir / "data")
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            consumers = _consumers(http)
            providers = _providers(http)
            for provider in providers[:10]:
                _subscribe(http, provider, "TECHNOLOGY")
            few_median, p90 = _measure(http, consumers)
            print(f"subscriptions=10    POST /v1/work median={few_median:.2f} ms p90={p90:.2f} ms")
            for index, provider in enumerate(providers):
                wanted = SUBSCRIPTIONS_PER_PROVIDER - (1 if index < 10 else 0)
                for n in range(wanted):
                    _subscribe(http, provider, f"CAT{index}X{n}")
            many_median, p90 = _measure(http, consumers)
            print(f"subscriptions=4000  POST /v1/work median={many_median:.2f} ms p90={p90:.2f} ms")
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)
    return [
        Figure(
            bench="bench_subscriptions",
            name="work_submissions_with_4000_subscriptions",
            value=1_000 / many_median,
            unit="req/s",
            baseline="the same with 10 subscriptions",
            baseline_value=1_000 / few_median,
            rounds=1,
        )
    ]


if __name__ == "__main__":
    for figure in main(sys.argv[1:]):
        print(figure.line())
