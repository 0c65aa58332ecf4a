"""Scale-out benchmarks on the local PostgreSQL (and Redis), in one run on the same server:

1. ledger settlements/s (a Hold then a Capture, two ledger transactions, through
   PostgresLedger) with LEDGER_PROCESSES client processes, against pgbench's built-in TPC-B
   (`pgbench -i`, then `pgbench -c 4 -j 2 -T 10`) in a private database created for the run and
   dropped afterwards; ROUNDS alternating rounds, medians (of the per-round ratios too).
   Target: settlements/s >= 40% of pgbench's tps.
2. API requests/s of an authenticated GET /v1/balance with one server process against two
   (`aex serve --workers 2`, the `make run-cluster` mode), load from wrk (or httpx) on loopback.

Environment: AEX_BENCH_DATABASE_URL (default the local postgres database, trust auth),
AEX_BENCH_REDIS_URL, AEX_BENCH_PG_SECONDS (10 per round), AEX_BENCH_PG_ROUNDS (3).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import bench_api

ADMIN_URL = os.environ.get(
    "AEX_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("AEX_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SECONDS = int(os.environ.get("AEX_BENCH_PG_SECONDS", "10"))
ROUNDS = int(os.environ.get("AEX_BENCH_PG_ROUNDS", "3"))
LEDGER_PROCESSES = int(os.environ.get("AEX_BENCH_LEDGER_PROCESSES", "4"))  # as pgbench -c 4
PAYERS_PER_PROCESS = 50
PAYEES = 100
TARGET_RATIO = 0.40
OPERATOR_KEY = "aexop_bench_" + "0" * 40


def _database_url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _pgbench_base() -> list[str]:
    conninfo = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    base = ["-h", str(conninfo.get("host", "127.0.0.1")), "-p", str(conninfo.get("port", 5432))]
    return [*base, "-U", str(conninfo.get("user", "postgres"))]


def _pgbench_init(database: str) -> None:
    subprocess.run(
        ["pgbench", "-i", "-q", *_pgbench_base(), database], check=True, capture_output=True
    )


def _pgbench(database: str) -> float:
    base = _pgbench_base()
    output = subprocess.run(
        ["pgbench", "-c", "4", "-j", "2", "-T", str(SECONDS), *base, database],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = re.search(r"tps = ([\d.]+) \((?:without|excluding)", output) or re.search(
        r"tps = ([\d.]+)", output
    )
    assert found is not None, output
    return float(found.group(1))


def _settle(url: str, process: int, seconds: float, queue: Any, go: Any) -> None:
    from aex.core import Money
    from aex.core.ledger import Capture, Deposit, Hold
    from serve.stores.postgres import PostgresStore
    from serve.stores.postgres_ledger import PostgresLedger

    store = PostgresStore(url, schema="aex", pool_min=1, pool_max=1)
    ledger = PostgresLedger(store)
    payers = [f"tenant:p{process}x{n}:USD" for n in range(PAYERS_PER_PROCESS)]
    for wallet_id in payers:
        ledger.apply(Deposit(f"fund:{wallet_id}", wallet_id, Money(10**12, "USD")))
    queue.put(("ready", process))
    go.wait(timeout=120)  # all processes measure the same seconds
    settled = 0
    tag = uuid.uuid4().hex[:8]
    end_s = time.perf_counter() + seconds
    while time.perf_counter() < end_s:
        hold_id = f"h{tag}{settled}"
        payer = payers[settled % PAYERS_PER_PROCESS]
        payee = f"tenant:q{(settled * 7 + process) % PAYEES}:USD"
        held = ledger.apply(Hold(f"hold:{hold_id}", hold_id, payer, Money(1_000, "USD")))
        captured = ledger.apply(Capture(f"cap:{hold_id}", hold_id, payee, 1_500))
        assert not hasattr(held, "reason"), held
        assert not hasattr(captured, "reason"), captured
        settled += 1
    store.close()
    queue.put(("done", settled, ledger.retries))


def _ledger_settlements(database: str) -> tuple[float, int]:
    from serve.stores.postgres import PostgresStore

    url = _database_url(database)
    PostgresStore(url, schema="aex", pool_min=1, pool_max=1).close()  # migrate once
    context = multiprocessing.get_context("spawn")
    queue, go = context.Queue(), context.Event()
    processes = [
        context.Process(target=_settle, args=(url, n, SECONDS, queue, go))
        for n in range(LEDGER_PROCESSES)
    ]
    for process in processes:
        process.start()
    results = [queue.get(timeout=120) for _ in range(LEDGER_PROCESSES)]
    go.set()
    results += [queue.get(timeout=120) for _ in range(LEDGER_PROCESSES)]
    for process in processes:
        process.join(timeout=60)
    done = [r for r in results if r[0] == "done"]
    assert len(done) == LEDGER_PROCESSES
    with psycopg.connect(url) as connection:
        totals = connection.execute(
            "SELECT currency, sum(amount_minor) FROM aex.postings GROUP BY currency"
        ).fetchall()
    assert all(total == 0 for _, total in totals), totals
    return sum(r[1] for r in done) / SECONDS, sum(r[2] for r in done)


def _start_cluster(workers: int, database: str, data_dir: Path) -> tuple[Any, str]:
    port = bench_api._free_port()
    env = {
        **os.environ,
        "AEX_DATABASE_URL": _database_url(database),
        "AEX_DATABASE_SCHEMA": f"api{workers}",
        "AEX_REDIS_URL": REDIS_URL,
        "AEX_REDIS_PREFIX": f"aex_bench_{uuid.uuid4().hex[:8]}:",
        "AEX_OPERATOR_KEY": OPERATOR_KEY,
        "AEX_JWT_SECRET": "bench-jwt-secret-" + "s" * 40,
        "AEX_RATE_LIMIT_PER_MINUTE": "100000000",
        "AEX_RATE_LIMIT_BURST": "10000000",
        "AEX_ANONYMOUS_RATE_LIMIT_PER_MINUTE": "100000000",
    }
    command = [sys.executable, "-m", "aex.cli", "serve", "--workers", str(workers)]
    command += ["--port", str(port), "--data-dir", str(data_dir)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    bench_api._wait(url + "/health", process)
    return process, url


def _api_rps(workers: int, database: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as directory:
        process, url = _start_cluster(workers, database, Path(directory) / "data")
        try:
            signed = httpx.post(url + "/v1/tenants", json={"name": "B", "type": "BOTH"}).json()
            headers = {"X-API-Key": signed["api_key"]}
            httpx.put(  # the Explorer plan's 1,000 requests/day would end the run early
                f"{url}/v1/admin/tenants/{signed['tenant_id']}/plan",
                json={"plan": "ENTERPRISE"},
                headers={"X-API-Key": OPERATOR_KEY},
            ).raise_for_status()
            for _ in range(50):  # warm every worker's pool and caches
                assert httpx.get(url + "/v1/balance", headers=headers).status_code == 200
            load = bench_api._wrk if shutil.which("wrk") else bench_api._httpx_load
            return load(url + "/v1/balance", headers, None)
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    database = f"aex_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}".encode())
    try:
        # Alternating rounds, medians: the machine's load drifts between runs, and a ratio of
        # two figures measured minutes apart would measure the drift.
        _pgbench_init(database)
        pgbench_runs, ledger_runs, retries = [], [], 0
        for _ in range(ROUNDS):
            pgbench_runs.append(_pgbench(database))
            settled, lost = _ledger_settlements(database)
            ledger_runs.append(settled)
            retries += lost
        pgbench_tps = statistics.median(pgbench_runs)
        settlements_per_s = statistics.median(ledger_runs)
        ratio = statistics.median(s / p for s, p in zip(ledger_runs, pgbench_runs, strict=True))
        one_rps, one_p99 = _api_rps(1, database)
        two_rps, two_p99 = _api_rps(2, database)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)".encode())
    figures = {
        "rounds": ROUNDS,
        "pgbench_tpcb_tps_runs": [round(t) for t in pgbench_runs],
        "ledger_settlements_per_s_runs": [round(t) for t in ledger_runs],
        "pgbench_tpcb_tps": round(pgbench_tps, 1),
        "ledger_settlements_per_s": round(settlements_per_s, 1),
        "ledger_transactions_per_s": round(2 * settlements_per_s, 1),
        "settlements_vs_pgbench": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "ledger_lost_race_retries": retries,
        "api_rps_1_process": round(one_rps, 1),
        "api_p99_ms_1_process": round(one_p99, 2),
        "api_rps_2_processes": round(two_rps, 1),
        "api_p99_ms_2_processes": round(two_p99, 2),
        "api_2_vs_1": round(two_rps / one_rps, 3),
        "cores": os.cpu_count(),
    }
    print(json.dumps(figures, indent=2), flush=True)


if __name__ == "__main__":
    main()
