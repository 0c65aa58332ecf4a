"""`python -m bench costs`: cost curves, how the cost of an operation grows with the market.

Issue 14 item 4. Each curve measures one cost at geometric sizes n, the median of at least
three repetitions per point (per-request p50 and p99 where the issue asks for them), fits the
growth exponent (the slope of log cost against log n, `numpy.polyfit`) and classifies it:
flat (slope < 0.1), log-like (< 0.3) or faster (a finding: fixed, or explained in
docs/performance.md "Cost curves"). The class is of the slope of the CPU per operation where
it is measured (this whole process's CPU: the app's thread and the background work the
operation left, e.g. a fan-out), else of the p50: on the shared 2-core machine the wall
latency moves with the other jobs' load far more than with n; both slopes are printed.

    store      GET /v1/balance, POST /v1/deposits, POST /v1/work, POST /v1/bids and the
               operator's window close (10 bids), p50/p99 per request, with n settled
               contracts already in the store (SQLite; PostgreSQL when it answers)
    close      the window close of one work against its number of bids n (10..1,000: the
               exchange refuses a work's 1,001st bid, limits.bids_per_work_max)
    submit     POST /v1/work against the number of subscribed (matching) providers n
    sim        the simulator (aex/sim, the reference market) CPU per auction against its
               number of providers n, 50 expected bids per item at every n

The exchange runs in this process: the real ASGI application (serve.app.create_app, every
middleware) under Litestar's TestClient, on a SQLite file in a temporary directory or a fresh
PostgreSQL schema (dropped afterwards); only loopback traffic. The n rows "already in the
store" are seeded in bulk (one executemany on SQLite, one COPY per table on PostgreSQL) as
copies of rows the API itself wrote (a template contract, provider, subscription, bid), with
fresh ids; the timed operations then go through the API.

Environment knobs (the defaults took 7.6 minutes on the shared 2-core machine, load ~8):
  AEX_BENCH_COSTS_MAX        a cap on the largest n of every curve (default 1000000: the
                             issue's ranges, store 1k..1M, close 10..10k, submit 10..100k,
                             sim 100..100k), lowered by the two below
  AEX_BENCH_COSTS_STORE_MAX  the most contracts seeded in the store (default 1000000, the
                             issue's top point: about 2 minutes of seeding per backend;
                             100000 saves 4 of the run's 8 minutes)
  AEX_BENCH_COSTS_SUBMIT_MAX the most subscribed providers (default 10000; 100000 is the
                             issue's top point, about 4 s of CPU per work with its fan-out)
  AEX_BENCH_COSTS_CURVES     which curves, comma-separated (default store,close,submit,sim)
  AEX_BENCH_COSTS_BACKENDS   sqlite,postgres (default both; PostgreSQL skipped with a message
                             when it does not answer at AEX_TEST_DATABASE_URL)
  AEX_BENCH_COSTS_REQUESTS   timed requests per operation per repetition (default 100)
  AEX_BENCH_COSTS_SIM_TICKS  simulator ticks per point (default 100, 100 items a tick)
  AEX_BENCH_ROUNDS           repetitions per point (at least 3)
Writes bench/results/costs.json and docs/img/cost-*.svg.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aex.core import limits
from bench.bench_market import WORK  # the benches' one work body
from bench.harness import Figure, rounds_from_env
from serve.settlement.wallets import wallet_id

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "costs.json"
IMG = ROOT / "docs" / "img"
FLAT, LOG_LIKE = 0.1, 0.3  # slope thresholds: below FLAT flat, below LOG_LIKE log-like
OPERATOR_KEY = "aexop_bench_" + "0" * 40
PG_URL = os.environ.get("AEX_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ALL_CURVES = ("store", "close", "submit", "sim")
STORE_OPS = ("balance", "deposit", "work", "bid", "close")
SIM_BIDS_PER_ITEM = 50


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


# --- the fit -------------------------------------------------------------------------------


def growth_slope(sizes: Sequence[float], costs: Sequence[float]) -> float:
    """The slope of log(cost) against log(n): 0 flat, 1 linear (numpy.polyfit, degree 1)."""
    assert len(sizes) == len(costs) >= 2, (sizes, costs)
    x, y = np.log(np.asarray(sizes, float)), np.log(np.asarray(costs, float))
    return float(np.polyfit(x, y, 1)[0])


def classify(slope: float) -> str:
    """flat (< 0.1), log-like (< 0.3) or faster (a finding)."""
    if slope < FLAT:
        return "flat"
    if slope < LOG_LIKE:
        return "log-like"
    return "faster"


def geometric(low: int, high: int, cap: int) -> list[int]:
    """low, 10·low, ... up to min(high, cap) (the cap itself as the last point if between)."""
    top = min(high, cap)
    sizes, n = [], low
    while n <= top:
        sizes.append(n)
        n *= 10
    if sizes and sizes[-1] < top:
        sizes.append(top)
    return sizes


@dataclass
class Curve:
    """One cost at several sizes: medians over the repetitions (p50 and p99 for requests)."""

    name: str  # e.g. "store/sqlite/balance"
    x: str  # what n counts
    unit: str
    sizes: list[int] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)  # empty where only one cost per point
    cpu: list[float] = field(default_factory=list)  # CPU per operation (same unit), if measured
    repetitions: int = 0
    note: str = ""

    def add(self, n: int, p50: float, p99: float | None = None, cpu: float | None = None) -> None:
        self.sizes.append(n)
        self.p50.append(p50)
        if p99 is not None:
            self.p99.append(p99)
        if cpu is not None:
            self.cpu.append(cpu)

    @property
    def slope(self) -> float:
        return growth_slope(self.sizes, self.p50) if len(self.sizes) >= 2 else float("nan")

    @property
    def slope_p99(self) -> float:
        if len(self.p99) >= 2 and len(self.p99) == len(self.sizes):
            return growth_slope(self.sizes, self.p99)
        return float("nan")

    @property
    def slope_cpu(self) -> float:
        if len(self.cpu) >= 2 and len(self.cpu) == len(self.sizes):
            return growth_slope(self.sizes, self.cpu)
        return float("nan")

    @property
    def judged_slope(self) -> float:
        """The slope the verdict is of: CPU per operation where measured (on a shared machine
        wall latency moves with the other jobs' load far more than with n), else the p50."""
        return self.slope if math.isnan(self.slope_cpu) else self.slope_cpu

    @property
    def verdict(self) -> str:
        slope = self.judged_slope
        return classify(slope) if not math.isnan(slope) else "-"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {
            "slope": self.slope,
            "slope_p99": self.slope_p99,
            "slope_cpu": self.slope_cpu,
            "judged_slope": self.judged_slope,
            "class": self.verdict,
        }


def table(curves: Sequence[Curve]) -> str:
    """Slopes of p50 (the verdict's), p99 and CPU per operation, each where measured."""
    head = f"{'curve':28} {'n':>16} {'p50 first..last':>28} {'p50':>6} {'p99':>6} {'CPU':>6}"
    lines = [head + "  class (of the CPU slope, else p50)"]
    for c in curves:
        if not c.sizes:
            continue
        span = f"{c.sizes[0]:,}..{c.sizes[-1]:,}"
        cost = f"{c.p50[0]:.3g}..{c.p50[-1]:.3g} {c.unit}"
        p99, cpu = ("" if math.isnan(v) else f"{v:6.2f}" for v in (c.slope_p99, c.slope_cpu))
        lines.append(
            f"{c.name:28} {span:>16} {cost:>28} {c.slope:6.2f} {p99:>6} {cpu:>6}  {c.verdict}"
        )
    return "\n".join(lines)


def percentiles(samples: Sequence[tuple[float, float]]) -> tuple[float, float, float]:
    """(p50 wall, p99 wall, mean CPU) of (wall, CPU) samples."""
    ordered = sorted(wall for wall, _ in samples)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return statistics.median(ordered), p99, statistics.fmean(cpu for _, cpu in samples)


# --- the exchange in this process ----------------------------------------------------------


@dataclass
class Exchange:
    """The whole ASGI app under TestClient, and a raw connection for bulk seeding."""

    http: Any  # litestar.testing.TestClient (an httpx.Client)
    backend: str
    sqlite_path: Path | None
    schema: str | None
    operator: dict[str, str] = field(default_factory=lambda: {"X-API-Key": OPERATOR_KEY})

    @contextlib.contextmanager
    def raw(self) -> Iterator[Any]:
        if self.sqlite_path is not None:
            connection = sqlite3.connect(self.sqlite_path, timeout=60, isolation_level=None)
            connection.row_factory = sqlite3.Row
            try:
                yield connection
            finally:
                connection.close()
        else:
            import psycopg
            from psycopg.rows import dict_row

            options = f"-c search_path={self.schema}"
            with psycopg.connect(
                PG_URL, autocommit=True, options=options, row_factory=dict_row
            ) as pg:
                yield pg

    def row(self, table_name: str, key: str, value: str) -> dict[str, Any]:
        with self.raw() as connection:
            mark = "?" if self.sqlite_path is not None else "%s"
            query = f"SELECT * FROM {table_name} WHERE {key} = {mark}"
            found = connection.execute(query, (value,)).fetchone()
            assert found is not None, (table_name, key, value)
            return dict(found)

    def insert(self, table_name: str, rows: Sequence[dict[str, Any]]) -> None:
        """Every row in one executemany (SQLite, one transaction) or one COPY (PostgreSQL)."""
        if not rows:
            return
        columns = list(rows[0])
        with self.raw() as connection:
            if self.sqlite_path is not None:
                marks = ", ".join("?" * len(columns))
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany(
                    f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({marks})",
                    [tuple(r[c] for c in columns) for r in rows],
                )
                connection.execute("COMMIT")
            else:
                with (
                    connection.cursor() as cursor,
                    cursor.copy(f"COPY {table_name} ({', '.join(columns)}) FROM STDIN") as copy,
                ):
                    for r in rows:
                        copy.write_row(tuple(r[c] for c in columns))

    def analyze(self) -> None:
        """What a running database does on its own (autovacuum; SQLite's optimize at close)."""
        with self.raw() as connection:
            connection.execute("ANALYZE")

    # The API, as a client would call it.
    def post(self, path: str, body: Any, headers: dict[str, str]) -> dict[str, Any]:
        response = self.http.post(path, json=body, headers=headers)
        assert response.status_code in (200, 201), (path, response.status_code, response.text)
        found: dict[str, Any] = response.json()
        return found

    def tenant(self, kind: str, plan: str = "ENTERPRISE", funds: int = 0) -> dict[str, Any]:
        tenant = self.post("/v1/tenants", {"name": "Bench", "type": kind}, {})
        response = self.http.put(
            f"/v1/admin/tenants/{tenant['tenant_id']}/plan",
            json={"plan": plan},
            headers=self.operator,
        )
        assert response.status_code == 200, response.text
        tenant["headers"] = {"X-API-Key": tenant["api_key"]}
        if funds:
            self.deposit(tenant, funds)
        return tenant

    def deposit(self, tenant: dict[str, Any], amount: int) -> None:
        body = {"tenant_id": tenant["tenant_id"], "amount": amount, "currency": "USD"}
        self.post("/v1/deposits", body, tenant["headers"])

    def provider(self, owner: dict[str, Any], subscribe: bool = True) -> dict[str, Any]:
        body = {"name": "Bot", "type": "AI_AGENT", "capabilities": ["x"], "category": "TECHNOLOGY"}
        provider = self.post("/v1/providers", body, owner["headers"])
        provider["headers"] = {"X-API-Key": provider["api_key"]}
        if subscribe:
            body = {"provider_id": provider["provider_id"], "categories": ["TECHNOLOGY"]}
            provider["subscription"] = self.post("/v1/subscriptions", body, provider["headers"])
        return provider

    def work(self, consumer: dict[str, Any]) -> dict[str, Any]:
        return self.post("/v1/work", WORK, consumer["headers"])

    def bid(self, provider: dict[str, Any], work_id: str, price: int = 100) -> dict[str, Any]:
        body = {
            "work_id": work_id,
            "provider_id": provider["provider_id"],
            "price": price,
            "confidence": 0.9,
            "estimated_duration": "2h",
            "sla": {"max_turnaround": "4h"},
        }
        return self.post("/v1/bids", body, provider["headers"])

    def close(self, work_id: str) -> dict[str, Any]:
        return self.post(f"/v1/admin/work/{work_id}/close", None, self.operator)


ENV = {
    "AEX_OPERATOR_KEY": OPERATOR_KEY,
    "AEX_RATE_LIMIT_PER_MINUTE": "100000000",
    "AEX_RATE_LIMIT_BURST": "10000000",
    "AEX_ANONYMOUS_RATE_LIMIT_PER_MINUTE": "100000000",
    "AEX_REQUESTS_PER_DAY": "100000000",
    "AEX_WEBHOOK_DNS": "off",
}


def postgres_available() -> str | None:
    """None when PostgreSQL answers at PG_URL, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as error:  # any failure means: skip, and say why
        return f"{type(error).__name__}: {error}".splitlines()[0]
    return None


def _devnull() -> Any:
    """One /dev/null stream for the process, never closed: the app's log handlers keep the
    stream they were made with, and a later record must not meet a closed file (it did, as
    "Logging error" noise in the test worker that ran the bench's tests)."""
    global _DEVNULL
    if _DEVNULL is None:
        _DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - kept for the process's life
    return _DEVNULL


_DEVNULL: Any = None


@contextlib.contextmanager
def exchange(backend: str) -> Iterator[Exchange]:
    """A fresh exchange in this process (its access log to /dev/null)."""
    from litestar.testing import TestClient

    from serve.app import create_app
    from serve.settings import Settings

    with tempfile.TemporaryDirectory(prefix="aex-bench-costs-") as tmp:
        env = dict(ENV)
        schema = None
        if backend == "postgres":
            schema = f"aex_bench_{uuid.uuid4().hex[:12]}"
            env |= {"AEX_DATABASE_URL": PG_URL, "AEX_DATABASE_SCHEMA": schema}
        settings = Settings.from_env(data_dir=Path(tmp) / "data", env=env)
        log = sys.stderr if os.environ.get("AEX_BENCH_COSTS_LOG") else _devnull()
        with contextlib.redirect_stderr(log):
            app: Any = create_app(settings)  # the access log middleware keeps this stream
        try:
            with TestClient(app=app, timeout=600) as http:
                settle(limit_s=60)  # the scoring kernel warms up in the background at start
                yield Exchange(
                    http,
                    backend,
                    settings.database_path if schema is None else None,
                    schema,
                )
        finally:
            if schema is not None:
                import psycopg
                from psycopg import sql

                with psycopg.connect(PG_URL, autocommit=True) as connection:
                    drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                    connection.execute(drop.format(sql.Identifier(schema)))


def timed(call: Callable[[], object]) -> tuple[float, float]:
    """(wall ms, CPU ms of this whole process: the app's thread and its background tasks)."""
    cpu, started = time.process_time(), time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000


def settle(quiet_cpu_ms: float = 3.0, slice_s: float = 0.05, limit_s: float = 120.0) -> float:
    """Waits until this process is quiet (under quiet_cpu_ms of CPU in a slice_s slice: the
    background work a request left, e.g. a work's webhook fan-out, is done); its CPU ms."""
    spent, deadline = 0.0, time.monotonic() + limit_s
    while time.monotonic() < deadline:
        cpu = time.process_time()
        time.sleep(slice_s)
        used = (time.process_time() - cpu) * 1000
        spent += used
        if used < quiet_cpu_ms:
            break
    return spent


def timed_settled(call: Callable[[], object]) -> tuple[float, float]:
    """(wall ms of the call, CPU ms of the call and of the background work it left)."""
    wall, cpu = timed(call)
    return wall, cpu + settle()


# --- seeding: copies of rows the API wrote ---------------------------------------------------


def _fresh(prefix: str, n: int, tag: str) -> str:
    # The API's id shape (serve/identity/security.py new_id: prefix_ + 16 hex).
    return f"{prefix}_{tag}{n:0{16 - len(tag)}x}"


@dataclass
class Template:
    """One settled contract as the API wrote it: its work, bid, contract, outcome and hold."""

    tenant: dict[str, Any]
    provider: dict[str, Any]
    work: dict[str, Any]
    bid: dict[str, Any]
    contract: dict[str, Any]
    outcome: dict[str, Any] | None
    hold: dict[str, Any]
    evaluation: dict[str, Any] | None
    wallet: dict[str, Any]


def settled_template(ex: Exchange) -> Template:
    consumer = ex.tenant("CONSUMER", funds=100_000)
    owner = ex.tenant("PROVIDER")
    provider = ex.provider(owner)
    work = ex.work(consumer)
    ex.bid(provider, work["work_id"])
    closed = ex.close(work["work_id"])
    contract_id = closed["contract_id"]
    done = {"results": {"ok": True}, "metrics": {"coverage": 0.9}}
    ex.post(f"/v1/contracts/{contract_id}/complete", done, provider["headers"])
    contract = ex.row("contracts", "contract_id", contract_id)
    with ex.raw() as connection:
        mark = "?" if ex.sqlite_path is not None else "%s"
        outcome = connection.execute(
            f"SELECT * FROM outcomes WHERE contract_id = {mark}", (contract_id,)
        ).fetchone()
        evaluation = connection.execute(
            f"SELECT * FROM evaluations WHERE work_id = {mark}", (work["work_id"],)
        ).fetchone()
    return Template(
        tenant=ex.row("tenants", "tenant_id", consumer["tenant_id"]),
        provider=ex.row("providers", "provider_id", provider["provider_id"]),
        work=ex.row("work", "work_id", work["work_id"]),
        bid=ex.row("bids", "bid_id", contract["bid_id"]),
        contract=contract,
        outcome=None if outcome is None else dict(outcome),
        hold=ex.row("holds", "hold_id", contract["hold_id"]),
        evaluation=None if evaluation is None else dict(evaluation),
        wallet=ex.row("wallets", "wallet_id", wallet_id(consumer["tenant_id"], "USD")),
    )


SEED_PARTIES = 1000  # the seeded contracts are spread over this many consumers and providers


def seed_contracts(ex: Exchange, t: Template, start: int, stop: int) -> None:
    """Settled contracts start..stop-1 (each with its work, bid, outcome, hold, evaluation)
    between SEED_PARTIES seeded consumers and providers (seeded with the first batch)."""
    if start == 0:
        ex.insert(
            "tenants",
            [t.tenant | {"tenant_id": _fresh("ten", i, "c0")} for i in range(SEED_PARTIES)]
            + [
                t.tenant | {"tenant_id": _fresh("ten", i, "p0"), "type": "PROVIDER"}
                for i in range(SEED_PARTIES)
            ],
        )
        ex.insert(
            "providers",
            [
                t.provider
                | {"provider_id": _fresh("prv", i, "s0"), "tenant_id": _fresh("ten", i, "p0")}
                for i in range(SEED_PARTIES)
            ],
        )
        ex.insert(
            "wallets",
            [
                t.wallet | {"wallet_id": wallet_id(_fresh("ten", i, "c0"), "USD")}
                for i in range(SEED_PARTIES)
            ],
        )
    batch = 100_000
    for low in range(start, stop, batch):
        ids = range(low, min(stop, low + batch))
        works, bids, contracts, outcomes, holds, evaluations = [], [], [], [], [], []
        for i in ids:
            work_id, bid_id = _fresh("work", i, "c"), _fresh("bid", i, "c")
            contract_id, hold = _fresh("ctr", i, "c"), f"seed-hold-{i}"
            consumer = _fresh("ten", i % SEED_PARTIES, "c0")
            provider = _fresh("prv", i % SEED_PARTIES, "s0")
            provider_tenant = _fresh("ten", i % SEED_PARTIES, "p0")
            works.append(
                t.work
                | {
                    "work_id": work_id,
                    "consumer_tenant_id": consumer,
                    "contract_id": contract_id,
                    "hold_id": f"seed-work-hold-{i}",
                }
            )
            bids.append(
                t.bid
                | {
                    "bid_id": bid_id,
                    "work_id": work_id,
                    "provider_id": provider,
                    "provider_tenant_id": provider_tenant,
                }
            )
            contracts.append(
                t.contract
                | {
                    "contract_id": contract_id,
                    "work_id": work_id,
                    "bid_id": bid_id,
                    "consumer_tenant_id": consumer,
                    "provider_id": provider,
                    "provider_tenant_id": provider_tenant,
                    "hold_id": hold,
                }
            )
            if t.outcome is not None:
                outcomes.append(t.outcome | {"contract_id": contract_id, "provider_id": provider})
            holds.append(t.hold | {"hold_id": hold, "wallet_id": wallet_id(consumer, "USD")})
            if t.evaluation is not None:
                evaluations.append(t.evaluation | {"work_id": work_id})
        for name, rows in (
            ("work", works),
            ("bids", bids),
            ("contracts", contracts),
            ("outcomes", outcomes),
            ("holds", holds),
            ("evaluations", evaluations),
        ):
            ex.insert(name, rows)


@dataclass
class ProviderTemplate:
    owner: dict[str, Any]  # the API's tenant (dict, with headers)
    provider: dict[str, Any]
    subscription: dict[str, Any]
    categories: list[dict[str, Any]]


def provider_template(ex: Exchange) -> ProviderTemplate:
    owner = ex.tenant("PROVIDER")
    made = ex.provider(owner)
    sub_id = made["subscription"]["subscription_id"]
    with ex.raw() as connection:
        mark = "?" if ex.sqlite_path is not None else "%s"
        categories = connection.execute(
            f"SELECT * FROM subscription_categories WHERE subscription_id = {mark}", (sub_id,)
        ).fetchall()
    return ProviderTemplate(
        owner=owner,
        provider=ex.row("providers", "provider_id", made["provider_id"]),
        subscription=ex.row("subscriptions", "subscription_id", sub_id),
        categories=[dict(row) for row in categories],
    )


def seed_providers(ex: Exchange, t: ProviderTemplate, start: int, stop: int) -> None:
    """Providers start..stop-1 of the template's (active) tenant, each subscribed to the
    template's category (its subscription and its category index rows)."""
    providers, subscriptions, categories = [], [], []
    for i in range(start, stop):
        provider_id, sub_id = _fresh("prv", i, "m"), _fresh("sub", i, "m")
        providers.append(t.provider | {"provider_id": provider_id})
        subscriptions.append(
            t.subscription | {"subscription_id": sub_id, "provider_id": provider_id}
        )
        categories += [
            row | {"subscription_id": sub_id, "provider_id": provider_id} for row in t.categories
        ]
    ex.insert("providers", providers)
    ex.insert("subscriptions", subscriptions)
    ex.insert("subscription_categories", categories)


def seed_bids(ex: Exchange, template_bid: dict[str, Any], work: dict[str, Any], n: int) -> None:
    """n bids on one work, from seeded providers 0..n-1, between its opening and now (the
    close refuses a bid from the future), prices spread over its budget."""
    work_id, opened_ms = work["work_id"], int(work["bid_window_opened_at_ms"])
    span_ms = max(1, int(time.time() * 1000) - opened_ms - 1)
    ex.insert(
        "bids",
        [
            template_bid
            | {
                "bid_id": _fresh("bid", i, f"w{work_id[-4:]}"),
                "work_id": work_id,
                "provider_id": _fresh("prv", i, "m"),
                "price_minor": 5_000 + (i * 7919) % 15_000,
                "submitted_at_ms": opened_ms + i * span_ms // n,
            }
            for i in range(n)
        ],
    )


# --- the curves ----------------------------------------------------------------------------


def _requests() -> int:
    return max(10, _env_int("AEX_BENCH_COSTS_REQUESTS", 100))


def _store_round(
    ex: Exchange, bidders: list[dict[str, Any]], requests: int
) -> dict[str, tuple[float, float, float]]:
    """One repetition of every store operation, a fresh funded consumer: percentiles each."""
    consumer = ex.tenant("CONSUMER", funds=10**7)
    balance = functools.partial(
        ex.http.get, "/v1/balance", params={"currency": "USD"}, headers=consumer["headers"]
    )
    found = {"balance": percentiles([timed(balance) for _ in range(requests)])}
    deposit = functools.partial(ex.deposit, consumer, 1)
    found["deposit"] = percentiles([timed(deposit) for _ in range(requests)])
    works: list[dict[str, Any]] = []
    # One work per 10 bids; the ENTERPRISE plan's 100 running tasks bound it.
    count = max(3, min(requests // len(bidders), 90))
    post = functools.partial(ex.work, consumer)
    found["work"] = percentiles([timed(lambda: works.append(post())) for _ in range(count)])
    found["bid"] = percentiles(
        [
            timed(functools.partial(ex.bid, p, w["work_id"], 60 + i))
            for w in works
            for i, p in enumerate(bidders)
        ]
    )
    found["close"] = percentiles([timed(functools.partial(ex.close, w["work_id"])) for w in works])
    return found


def store_curves(backend: str, sizes: Sequence[int], rounds: int) -> list[Curve]:
    """p50/p99 of each operation with n settled contracts in the store (cumulative seeding)."""
    requests = _requests()
    curves = {
        op: Curve(f"store/{backend}/{op}", "contracts in the store", "ms", repetitions=rounds)
        for op in STORE_OPS
    }
    with exchange(backend) as ex:
        template = settled_template(ex)
        owner = ex.tenant("PROVIDER")
        bidders = [ex.provider(owner) for _ in range(10)]
        seeded = 0
        for n in sizes:
            started = time.perf_counter()
            seed_contracts(ex, template, seeded, n)
            seeded = n
            ex.analyze()
            seed_s = time.perf_counter() - started
            samples: dict[str, list[tuple[float, float, float]]] = {op: [] for op in STORE_OPS}
            for _ in range(rounds):
                for op, found in _store_round(ex, bidders, requests).items():
                    samples[op].append(found)
            line = []
            for op in STORE_OPS:
                p50 = statistics.median(s[0] for s in samples[op])
                p99 = statistics.median(s[1] for s in samples[op])
                cpu = statistics.median(s[2] for s in samples[op])
                curves[op].add(n, p50, p99, cpu)
                line.append(f"{op} {p50:.2f}/{p99:.2f}/{cpu:.2f}")
            print(
                f"  {backend} {n:>9,} contracts (seeded in {seed_s:.1f} s), p50/p99/CPU ms: "
                + ", ".join(line),
                flush=True,
            )
    return list(curves.values())


def close_and_submit_curves(
    backend: str, close_sizes: Sequence[int], submit_sizes: Sequence[int], rounds: int
) -> list[Curve]:
    """Window close against n bids, and POST /v1/work against n subscribed providers."""
    close = Curve(f"close/{backend}", "bids on the work", "ms", repetitions=rounds)
    close_bid = Curve(f"close/{backend}/per bid", "bids on the work", "ms/bid", repetitions=rounds)
    submit = Curve(f"submit/{backend}", "subscribed providers", "ms", repetitions=rounds)
    with exchange(backend) as ex:
        template = provider_template(ex)
        consumer = ex.tenant("CONSUMER", funds=10**8)
        # A bid the API wrote: its body is the template of the seeded ones.
        work = ex.work(consumer)
        made = ex.bid(template_provider(ex), work["work_id"])
        bid_template = ex.row("bids", "bid_id", made["bid_id"])
        ex.close(work["work_id"])
        seeded = 0
        for n in sorted(set(close_sizes) | set(submit_sizes)):
            seed_providers(ex, template, seeded, n)
            seeded = n
            ex.analyze()
            if n in submit_sizes and not _publishes(ex, n):
                submit.note = f"refused at n={n:,}: the event payload over its limit"
                submit_sizes = [m for m in submit_sizes if m < n]
            if n in submit_sizes:
                rows = []
                # Fewer at large n (each one costs O(n): docs/performance.md "Cost curves").
                submits = max(3, min(_requests() // 5, 20_000 // n))
                for _ in range(rounds):
                    buyer = ex.tenant("CONSUMER", funds=10**7)
                    ex.work(buyer)  # warm-up, untimed
                    settle()
                    # Each one after the previous one's background fan-out is done (else
                    # it queues behind it): p50/p99 of the request, CPU with its fan-out.
                    post = functools.partial(ex.work, buyer)
                    times = [timed_settled(post) for _ in range(submits)]
                    rows.append(percentiles(times))
                p50 = statistics.median(r[0] for r in rows)
                p99 = statistics.median(r[1] for r in rows)
                cpu = statistics.median(r[2] for r in rows)
                submit.add(n, p50, p99, cpu)
                print(
                    f"  {backend} POST /v1/work, {n:>7,} subscribed: p50 {p50:.2f} ms,"
                    f" p99 {p99:.2f} ms, CPU with its fan-out {cpu:.1f} ms",
                    flush=True,
                )
            if n in close_sizes:
                times = []
                for repetition in range(rounds + 1):  # the first one warms up, untimed
                    target = ex.work(consumer)
                    seed_bids(ex, bid_template, target, n)
                    settle()  # the work's own fan-out done first
                    closed: dict[str, Any] = {}
                    times.append(timed_settled(lambda: closed.update(ex.close(target["work_id"]))))  # noqa: B023
                    assert closed["status"] == "AWARDED", closed
                    if repetition == 0:
                        times.clear()
                cost = statistics.median(wall for wall, _ in times)
                cpu = statistics.median(cpu for _, cpu in times)
                close.add(n, cost, None, cpu)
                close_bid.add(n, cost / n, None, cpu / n)
                print(
                    f"  {backend} window close, {n:>7,} bids: {cost:.1f} ms"
                    f" ({cost / n * 1000:.1f} us/bid), CPU with its fan-out {cpu:.1f} ms",
                    flush=True,
                )
    return [close, close_bid, submit]


def _publishes(ex: Exchange, n: int) -> bool:
    """Whether a work matching n subscribers is accepted at all. It was not beyond ~44,000
    until the work.submitted event was sliced (a 500; docs/performance.md "Cost curves",
    finding 3): a refusal now is a regression, reported and the point skipped."""
    buyer = ex.tenant("CONSUMER", funds=10**7)
    response = ex.http.post("/v1/work", json=WORK, headers=buyer["headers"])
    settle()
    if response.status_code == 201:
        return True
    print(f"  {ex.backend} POST /v1/work, {n:>7,} subscribed: REFUSED, {response.status_code}")
    return False


def template_provider(ex: Exchange) -> dict[str, Any]:
    owner = ex.tenant("PROVIDER")
    return ex.provider(owner)


def sim_point(n: int, ticks: int) -> dict[str, float]:
    """The reference market with n providers, SIM_BIDS_PER_ITEM expected bids per item."""
    from aex.sim.runner import simulate
    from aex.sim.scenario import load_scenario

    params = load_scenario(ROOT / "scenarios" / "reference_reverse_auction.toml")
    groups = tuple(
        dataclasses.replace(g, count=n, bid_probability=min(1.0, SIM_BIDS_PER_ITEM / n))
        for g in params.providers[:1]
    )
    params = dataclasses.replace(params, ticks=ticks, providers=groups)
    with tempfile.TemporaryDirectory() as tmp:
        cpu = time.process_time()
        result, con = simulate(params, out=str(Path(tmp) / "sim.duckdb"))
        cpu_s = time.process_time() - cpu
        con.close()
    return {
        "auctions": float(result.awards),
        "bids": float(result.bids),
        "cpu_us_per_auction": cpu_s / max(1, result.awards) * 1e6,
        "cpu_us_per_bid": cpu_s / max(1, result.bids) * 1e6,
        "auctions_per_s": float(result.auctions_per_s),
    }


def sim_curves(sizes: Sequence[int], rounds: int) -> list[Curve]:
    ticks = _env_int("AEX_BENCH_COSTS_SIM_TICKS", 100)
    auction = Curve("sim/auction", "providers", "CPU us/auction", repetitions=rounds)
    bid = Curve("sim/bid", "providers", "CPU us/bid", repetitions=rounds)
    # (the simulator's figures are CPU already: its p50 is the CPU per auction)
    sim_point(sizes[0], 5)  # imports, numba's cache
    for n in sizes:
        points = [sim_point(n, ticks) for _ in range(rounds)]
        a = statistics.median(p["cpu_us_per_auction"] for p in points)
        b = statistics.median(p["cpu_us_per_bid"] for p in points)
        auction.add(n, a)
        bid.add(n, b)
        rate = statistics.median(p["auctions_per_s"] for p in points)
        per = statistics.median(p["bids"] / max(1.0, p["auctions"]) for p in points)
        print(
            f"  sim {n:>7,} providers: {a:.1f} CPU us/auction ({per:.0f} bids each),"
            f" {rate:,.0f} auctions/s wall",
            flush=True,
        )
    return [auction, bid]


# --- plots and the summary -----------------------------------------------------------------


def plot(curves: Sequence[Curve], path: Path, title: str) -> None:
    """Log-log lines of p50 (and p99 where measured) against n, as SVG (vl-convert, offline)."""
    import altair as alt
    import pandas as pd

    rows = []
    for c in curves:
        for i, n in enumerate(c.sizes):
            rows.append({"n": n, "cost": c.p50[i], "curve": c.name, "stat": "p50"})
            if len(c.p99) == len(c.sizes):
                rows.append({"n": n, "cost": c.p99[i], "curve": c.name, "stat": "p99"})
            if len(c.cpu) == len(c.sizes):
                rows.append({"n": n, "cost": c.cpu[i], "curve": c.name, "stat": "CPU"})
    if not rows:
        return
    frame = pd.DataFrame(rows)
    unit = curves[0].unit
    chart = (
        alt.Chart(frame, title=title)
        .mark_line(point=True)
        .encode(
            x=alt.X("n:Q", scale=alt.Scale(type="log"), title=curves[0].x),
            y=alt.Y("cost:Q", scale=alt.Scale(type="log"), title=unit),
            color=alt.Color("curve:N"),
            strokeDash=alt.StrokeDash(
                "stat:N", legend=alt.Legend(symbolType="stroke", symbolStrokeColor="black")
            ),
        )
        .properties(width=480, height=300)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    chart.save(str(path))


def write_outputs(curves: Sequence[Curve], results: Path, img: Path) -> None:
    results.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "thresholds": {"flat": FLAT, "log_like": LOG_LIKE},
        "curves": [c.to_json() for c in curves],
    }
    results.write_text(json.dumps(document, indent=2) + "\n")
    groups: dict[str, list[Curve]] = {}
    for c in curves:
        parts = c.name.split("/")
        key = "-".join(parts[:2]) if parts[0] == "store" else parts[0]
        if c.name.endswith("per bid") or c.name == "sim/bid":
            key += "-per-item"
        groups.setdefault(key, []).append(c)
    for key, members in groups.items():
        plot(members, img / f"cost-{key}.svg", f"cost curve: {key}")


def curves_from(document: dict[str, Any]) -> list[Curve]:
    """The curves of a costs.json (to plot it again: `python -m bench.bench_costs --plot`)."""
    names = {f.name for f in dataclasses.fields(Curve)}
    return [Curve(**{k: v for k, v in c.items() if k in names}) for c in document["curves"]]


def figures(curves: Sequence[Curve]) -> list[Figure]:
    """Per curve: the rate (1/cost) at the largest n against the rate at the smallest n
    (same run): 100% is flat."""
    found = []
    for c in curves:
        if len(c.sizes) < 2:
            continue
        found.append(
            Figure(
                "bench_costs",
                f"{c.name} at n={c.sizes[-1]:,} (slope {c.judged_slope:.2f}, {c.verdict})",
                1 / (c.cpu or c.p50)[-1],
                f"1/{c.unit}" + (" CPU" if c.cpu else ""),
                f"the same at n={c.sizes[0]:,}",
                1 / (c.cpu or c.p50)[0],
                c.repetitions,
            )
        )
    return found


def main(argv: list[str] | None = None) -> list[Figure]:
    del argv  # knobs from the environment (module docstring)
    rounds = rounds_from_env()
    cap = _env_int("AEX_BENCH_COSTS_MAX", 1_000_000)
    store_cap = min(cap, _env_int("AEX_BENCH_COSTS_STORE_MAX", 1_000_000))
    submit_cap = min(cap, _env_int("AEX_BENCH_COSTS_SUBMIT_MAX", 10_000))
    wanted = os.environ.get("AEX_BENCH_COSTS_CURVES", ",".join(ALL_CURVES)).split(",")
    backends = os.environ.get("AEX_BENCH_COSTS_BACKENDS", "sqlite,postgres").split(",")
    if "postgres" in backends and (why := postgres_available()) is not None:
        print(f"PostgreSQL at {PG_URL} does not answer ({why}): its curves are skipped")
        backends.remove("postgres")
    curves: list[Curve] = []
    for backend in backends:
        if "store" in wanted:
            curves += store_curves(backend, geometric(1_000, 1_000_000, store_cap), rounds)
        # The exchange refuses a work's 1,001st bid (409, limits.bids_per_work_max): the
        # issue's 10,000-bid point is not a market state, so the curve stops at 1,000.
        top = min(cap, limits.bids_per_work_max)
        close = geometric(10, 10_000, top) if "close" in wanted else []
        submit = geometric(10, 100_000, submit_cap) if "submit" in wanted else []
        if close or submit:
            curves += close_and_submit_curves(backend, close, submit, rounds)
    if "sim" in wanted:
        curves += sim_curves(geometric(100, 100_000, cap), rounds)
    print(table(curves))
    write_outputs(curves, RESULTS, IMG)
    print(f"summary: {RESULTS}; plots: {IMG}/cost-*.svg")
    return figures(curves)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--plot"]:  # the plots and table of a saved summary, no run
        saved = curves_from(
            json.loads(Path(sys.argv[2] if len(sys.argv) > 2 else RESULTS).read_text())
        )
        print(table(saved))
        write_outputs(saved, RESULTS, IMG)
        sys.exit(0)
    for figure in main(sys.argv[1:]):
        print(figure.line())
