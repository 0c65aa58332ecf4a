"""`python -m bench bench_market`: the market through HTTP, end to end, on one `aex serve`.

1. Full cycles per second: post work, 10 providers bid (concurrently), the operator closes the
   window (evaluation and award in one transaction), the winner completes, settlement. Run
   sequentially (latency of one cycle) and with CYCLE_WORKERS cycles in flight (throughput).
2. Bid submissions per second against a bare Litestar endpoint in the same run, both driven by
   wrk (a Lua script spreads the bids over WORKS × PROVIDERS distinct (work, provider) pairs,
   each with its own provider key: a bid is one BEGIN IMMEDIATE transaction with the admission
   check, the insert and its outbox event, COMMIT with synchronous=FULL).
Environment: AEX_BENCH_DURATION_S (default 5), AEX_BENCH_CONNECTIONS (default 32),
AEX_BENCH_CYCLES (default 30).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from aex.core import PLAN_QUOTAS, Plan
from bench.bench_api import OPERATOR_KEY, _start_aex, _start_bare
from bench.harness import Figure, rounds_from_env

DURATION_S = int(os.environ.get("AEX_BENCH_DURATION_S", "5"))
CONNECTIONS = int(os.environ.get("AEX_BENCH_CONNECTIONS", "32"))
CYCLES = int(os.environ.get("AEX_BENCH_CYCLES", "30"))
CYCLE_WORKERS = 4
BIDDERS = 10
PROVIDERS = 50
WORKS = 600  # x 50 providers: 30,000 distinct pairs, 10,000 a round in three rounds
OPERATOR = {"X-API-Key": OPERATOR_KEY}
WORK = {
    "title": "Review Go microservices codebase",
    "category": "TECHNOLOGY",
    "budget": {"min": 50, "max": 200, "currency": "USD"},
    "requirements": {"language": "Go"},
    "success_criteria": [{"metric": "coverage", "threshold": 0.8}],
    "bid_window_seconds": 300,
}


def _tenant(http: httpx.Client, kind: str) -> dict[str, Any]:
    tenant: dict[str, Any] = http.post("/v1/tenants", json={"name": "Bench", "type": kind}).json()
    http.put(
        f"/v1/admin/tenants/{tenant['tenant_id']}/plan",
        json={"plan": "ENTERPRISE"},
        headers=OPERATOR,
    ).raise_for_status()
    return tenant


def _provider(http: httpx.Client) -> tuple[str, str]:
    owner = _tenant(http, "PROVIDER")
    body = {
        "name": "BenchBot",
        "type": "AI_AGENT",
        "capabilities": ["code_review"],
        "category": "TECHNOLOGY",
    }
    created = http.post("/v1/providers", json=body, headers={"X-API-Key": owner["api_key"]})
    provider = created.json()
    headers = {"X-API-Key": provider["api_key"]}
    subscription = {"provider_id": provider["provider_id"], "categories": ["TECHNOLOGY"]}
    http.post("/v1/subscriptions", json=subscription, headers=headers).raise_for_status()
    return provider["provider_id"], provider["api_key"]


def _bid_body(work_id: str, provider_id: str, price: int) -> dict[str, Any]:
    return {
        "work_id": work_id,
        "provider_id": provider_id,
        "price": price,
        "confidence": 0.9,
        "estimated_duration": "2h",
        "sla": {"max_turnaround": "4h"},
    }


def _cycle(
    http: httpx.Client, consumer: dict[str, str], bidders: list[tuple[str, str]], pool: Any
) -> float:
    started = time.perf_counter()
    work = http.post("/v1/work", json=WORK, headers=consumer).json()

    def one_bid(n: int) -> int:
        provider_id, key = bidders[n]
        body = _bid_body(work["work_id"], provider_id, 60 + 10 * n)
        return http.post("/v1/bids", json=body, headers={"X-API-Key": key}).status_code

    assert list(pool.map(one_bid, range(BIDDERS))) == [201] * BIDDERS
    closed = http.post(f"/v1/admin/work/{work['work_id']}/close", headers=OPERATOR).json()
    assert closed["status"] == "AWARDED", closed
    winner_key = next(key for pid, key in bidders if pid == _winner(http, closed, consumer))
    completion = {"results": {"ok": True}, "metrics": {"coverage": 0.9}}
    settled = http.post(
        f"/v1/contracts/{closed['contract_id']}/complete",
        json=completion,
        headers={"X-API-Key": winner_key},
    ).json()
    assert settled["status"] == "SETTLED", settled
    return time.perf_counter() - started


def _winner(http: httpx.Client, work: dict[str, Any], consumer: dict[str, str]) -> str:
    contract = http.get(f"/v1/contracts/{work['contract_id']}", headers=consumer).json()
    return str(contract["provider_id"])


def _cycles(url: str, consumer: dict[str, str], bidders: list[tuple[str, str]]) -> None:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with (
        httpx.Client(base_url=url, timeout=60, limits=limits) as http,
        ThreadPoolExecutor(BIDDERS) as pool,
    ):
        _cycle(http, consumer, bidders, pool)  # warm-up
        durations = [_cycle(http, consumer, bidders, pool) for _ in range(CYCLES)]
        print(
            f"full cycle, sequential: {1 / statistics.median(durations):7.1f} cycles/s"
            f"  (median {statistics.median(durations) * 1000:.1f} ms, 12 + 10 requests)"
        )
        started = time.perf_counter()
        with ThreadPoolExecutor(CYCLE_WORKERS) as workers:
            pools = [ThreadPoolExecutor(BIDDERS) for _ in range(CYCLE_WORKERS)]
            list(
                workers.map(
                    lambda n: _cycle(http, consumer, bidders, pools[n % CYCLE_WORKERS]),
                    range(CYCLES),
                )
            )
            for extra in pools:
                extra.shutdown()
        elapsed = time.perf_counter() - started
        print(f"full cycle, {CYCLE_WORKERS} in flight:  {CYCLES / elapsed:7.1f} cycles/s")


# wrk runs this script once per thread: each thread takes every WRK_THREADS-th pair, from its
# own offset, so that no two requests carry the same (work, provider) pair.
WRK_THREADS = 2
ROUNDS = rounds_from_env()
_LUA = """
local pairs_list = %s
local threads = 0
setup = function(thread)
  thread:set("offset", threads)
  threads = threads + 1
end
local n = nil
request = function()
  if n == nil then n = offset end
  local p = pairs_list[(n %% #pairs_list) + 1]
  n = n + %d
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["X-API-Key"] = p[2]
  return wrk.format("POST", "/v1/bids", headers, p[1])
end
"""


def _wrk(url: str, script: str | None) -> tuple[float, float, int]:
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", "--latency"]
    path = None
    if script is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
            handle.write(script)
            path = handle.name
        command += ["-s", path]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if path is not None:
        Path(path).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    assert p99 is not None, output
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return rps, float(p99.group(1)) * scale, int(errors.group(1)) if errors else 0


def _funded_consumer(http: httpx.Client) -> dict[str, str]:
    consumer = _tenant(http, "CONSUMER")
    headers = {"X-API-Key": consumer["api_key"]}
    deposit = {"tenant_id": consumer["tenant_id"], "amount": 10**8, "currency": "USD"}
    http.post("/v1/deposits", json=deposit, headers=headers).raise_for_status()
    return headers


def _open_works(http: httpx.Client, count: int) -> list[dict[str, Any]]:
    """`count` open works, from as many funded consumers as the Enterprise plan's concurrent
    tasks (100 each) need."""
    per_consumer = PLAN_QUOTAS[Plan.ENTERPRISE].concurrent_tasks_max
    works: list[dict[str, Any]] = []
    while len(works) < count:
        consumer = _funded_consumer(http)
        for _ in range(min(per_consumer, count - len(works))):
            created = http.post("/v1/work", json=WORK, headers=consumer)
            assert created.status_code == 201, created.text
            works.append(created.json())
    return works


def _bid_scripts(
    http: httpx.Client, providers: list[tuple[str, str]], rounds: int = 1
) -> list[str]:
    """One wrk script per round, each over its own slice of the distinct (work, provider)
    pairs: wrk starts every run at the script's first pair, so one script for all rounds made
    every round after the first resend the first one's bids (409 duplicates, counted as
    requests)."""
    works = _open_works(http, WORKS)
    entries = []
    # Work-major order over distinct pairs: consecutive requests hit different works.
    for provider_id, key in providers:
        for work in works:
            body = json.dumps(_bid_body(work["work_id"], provider_id, 100))
            entries.append("{%s, %s}" % (json.dumps(body), json.dumps(key)))  # noqa: UP031
    per_round = len(entries) // rounds
    slices = [entries[r * per_round : (r + 1) * per_round] for r in range(rounds)]
    return [_LUA % ("{" + ",\n".join(part) + "}", WRK_THREADS) for part in slices]


def main(argv: list[str] | None = None) -> list[Figure]:
    if shutil.which("wrk") is None:
        print("bench_market needs wrk (apt-get install -y wrk): skipped, no figures")
        return []
    with tempfile.TemporaryDirectory() as tmp:
        aex, aex_url = _start_aex(Path(tmp) / "data")
        bare, bare_url = _start_bare()
        try:
            with httpx.Client(base_url=aex_url, timeout=60) as http:
                headers = _funded_consumer(http)
                providers = [_provider(http) for _ in range(PROVIDERS)]
                _cycles(aex_url, headers, providers[:BIDDERS])
                scripts = _bid_scripts(http, providers, ROUNDS)
            bare_runs, bid_runs = [], []
            for script in scripts:  # interleaved: one bare run, then one bid run
                bare_runs.append(_wrk(bare_url + "/bare", None))
                bid_runs.append(_wrk(aex_url, script))
            bare_rps = statistics.median(run[0] for run in bare_runs)
            bare_p99 = statistics.median(run[1] for run in bare_runs)
            bid_rps = statistics.median(run[0] for run in bid_runs)
            bid_p99 = statistics.median(run[1] for run in bid_runs)
            refused = sum(run[2] for run in bid_runs)
        finally:
            for process in (aex, bare):
                process.terminate()
                process.wait(timeout=10)
    print(f"bare GET /bare      {bare_rps:9.0f} req/s  p99 {bare_p99:7.2f} ms")
    print(
        f"aex POST /v1/bids   {bid_rps:9.0f} req/s  p99 {bid_p99:7.2f} ms"
        f"  {bid_rps / bare_rps:6.1%} of bare"
        + (
            f"  ({refused} refused: a round's {WORKS * PROVIDERS // ROUNDS} pairs ran out)"
            if refused
            else ""
        )
    )

    return [
        Figure(
            "bench_market",
            "aex POST /v1/bids (wrk)",
            bid_rps,
            "req/s",
            "bare Litestar GET /bare",
            bare_rps,
            ROUNDS,
            0.30,
        )
    ]


if __name__ == "__main__":
    for figure in main(sys.argv[1:]):
        print(figure.line())
