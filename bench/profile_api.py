"""`make profile-api` / `python -m bench.profile_api [ROUTE ...]`: where a request's CPU goes.

For each route (balance, deposits, bids), one `aex serve` on the embedded default is loaded by
wrk (32 connections) while py-spy samples it (200 Hz, Python frames of every thread): a flame
graph (docs/img/flame-ROUTE.svg) and the per-layer CPU per request (bench/results/
profile-ROUTE.json, and printed). The process's CPU time over the window (utime + stime from
/proc) divided by the requests wrk completed is the CPU per request; each ASGI layer's
share of the working samples splits it: `inclusive` (the layer and all it calls), `own`
(inclusive minus the next layer's: its own code, its send wrapper included, and the resumption
of its coroutine frame after each await within). Work a request hands to another thread or
task (the market's writer thread, the ledger's group commit, reads on the thread pool) is
outside its coroutine chain: rows of its own. Samples of a thread waiting are left out.

py-spy (a dev dependency) needs ptrace on the server (root here, or CAP_SYS_PTRACE); wrk
comes from Debian (`apt-get install -y wrk`). This is a profile, not a benchmark: its figures
are shares and CPU per request under a sampling profiler (which slows the process by a few
percent), not ratios; bench/bench_api.py and bench/bench_market.py hold the ratios.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.bench_api import OPERATOR_KEY, _start_aex

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "img"
RESULTS = ROOT / "bench" / "results"
DURATION_S = int(os.environ.get("AEX_PROFILE_DURATION_S", "15"))
CONNECTIONS = 32
RATE_HZ = 200

# The application's ASGI layers, outermost first (serve/app.py create_app), then Litestar's
# router and the route's handler: a frame of each, as py-spy names it.
LAYERS: tuple[tuple[str, str], ...] = (
    ("gateway (the spec's stack, one layer)", "Gateway.__call__ (serve/gateway/pipeline.py)"),
    ("location", "LocationMiddleware.__call__ (serve/gateway/locations.py)"),
    ("idempotency", "IdempotencyMiddleware.__call__ (serve/gateway/middleware.py)"),
    ("litestar (routing, parsing, response)", "Litestar.__call__ (litestar/app.py)"),
)
# The gateway's own work, split by the rule it runs (serve/gateway/pipeline.py): a row each,
# its share of the samples with the frame on the stack (part of the gateway's own row).
GATEWAY_PARTS: tuple[tuple[str, str], ...] = (
    ("  of which rate limit + authentication", "Admission.admit ("),
    ("  of which access log", "AccessLog.request ("),
    ("  of which trace span", "RequestSpan."),
    ("  of which request metrics", "RequestMetrics.record ("),
    ("  of which the hot route (balance: the read and the view)", "balance_hot_route."),
)
# The route's own work inside Litestar (the controller method): a frame prefix per route.
HANDLERS = {
    "balance": "WalletController.balance (serve/settlement/routes.py)",
    "deposits": "WalletController.deposit (serve/settlement/routes.py)",
    "bids": "BidController.",
}
# Samples outside a request's coroutine chain, by the first of these frames on their stack:
# the request's work handed to another thread or task, and the process's background loops.
OUTSIDE: tuple[tuple[str, str], ...] = (
    ("market writes (writer thread, group commit)", "SqliteMarketDb._write_batches ("),
    ("ledger group commit (deposits)", "SqliteLedger._write_batches ("),
    ("reads on the thread pool", "_WorkItem.run ("),
    ("background (outbox tail, sweeps)", "EventHub.run ("),
    ("the HTTP server (uvicorn: parsing, writing)", "HttpToolsProtocol."),
)
OTHER = "other, outside a request"
# The answer on its way out: each layer's send wrapper (`X.__call__.<locals>.send_...`) on the
# stack down to uvicorn's send and its socket write. Counted apart from the layers' own code.
SENDING = "sending the answer (every layer's send wrapper, uvicorn's write)"
SENDING_FRAME = "RequestResponseCycle.send ("
# A sample whose innermost frame is one of these is a thread waiting (for work, for I/O, for
# the GIL: py-spy without --idle cannot tell them apart), not CPU: left out of the split.
WAITING = (
    "Runner.run (asyncio/runners.py)",
    "EpollSelector.select (selectors.py)",
    "Condition.wait (threading.py)",
    "_worker (concurrent/futures/thread.py)",
    "Queue.get (queue.py)",
)
ROUTES = {"balance": "GET /v1/balance", "deposits": "POST /v1/deposits", "bids": "POST /v1/bids"}
PROVIDERS = 40  # for bids: 40 providers x bench_market's works, distinct pairs


@dataclass(frozen=True)
class Layer:
    name: str
    inclusive: float  # share of the working samples with this layer on the stack
    own: float  # inclusive minus the next layer's (outside a request: the samples in it)
    own_us_per_request: float
    detail: bool = False  # a part of the row above it (the gateway's rules), not a row of the sum


def _frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rstrip("\n").rpartition(" ")
    # "Name (file.py:LINE)" -> "Name (file.py)": lines differ within one function.
    return [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")], int(count)


def _in_request(frames: list[str], handler_prefix: str, count: int) -> dict[str, int]:
    """The rows a sample inside a request counts for: each layer and gateway part on its
    stack, and the handler."""
    present = set(frames)
    rows = [name for name, frame in LAYERS if frame in present]
    rows += [name for name, prefix in GATEWAY_PARTS if any(f.startswith(prefix) for f in frames)]
    if any(frame.startswith(handler_prefix) for frame in frames):
        rows.append("handler")
    return dict.fromkeys(rows, count)


def layer_table(
    collapsed: Iterable[str], handler_prefix: str, cpu_us_per_request: float
) -> list[Layer]:
    """The split of py-spy's collapsed stacks (`frame;frame;... count` lines) over the ASGI
    layers of a request and the work done outside it: each row's inclusive and own share of
    the working samples (those not waiting) and its CPU per request (`cpu_us_per_request`,
    the process's, times its own share). Pure: tested on synthetic stacks
    (tests/bench/test_profile_api.py)."""
    names = [name for name, _ in LAYERS] + ["handler"]
    hits = collections.Counter[str]()
    working = 0
    for line in collapsed:
        if not line.strip():
            continue
        frames, count = _frames(line)
        if frames[-1] in WAITING:
            continue
        working += count
        if any(frame.startswith(SENDING_FRAME) for frame in frames):
            hits[SENDING] += count  # the answer going out: every layer's wrapper, the write
            continue
        if LAYERS[0][1] not in frames:
            outside = next(
                (name for name, prefix in OUTSIDE if any(f.startswith(prefix) for f in frames)),
                OTHER,
            )
            hits[outside] += count
            continue
        hits.update(_in_request(frames, handler_prefix, count))
    if working == 0:
        return []
    rows = []
    for index, name in enumerate(names):  # own: on this layer's frame, not on the next one's
        inner = hits[names[index + 1]] if index + 1 < len(names) else 0
        own = max(hits[name] - inner, 0) / working
        rows.append(Layer(name, hits[name] / working, own, own * cpu_us_per_request))
        if index == 0:
            for part, _ in GATEWAY_PARTS:
                share = hits[part] / working
                rows.append(Layer(part, share, share, share * cpu_us_per_request, detail=True))
    for name in [SENDING] + [name for name, _ in OUTSIDE] + [OTHER]:
        share = hits[name] / working
        rows.append(Layer(name, share, share, share * cpu_us_per_request))
    return rows


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _post_lua(path: str, body: str) -> str:
    return (
        f'wrk.method = "POST"\nwrk.path = "{path}"\nwrk.body = {json.dumps(body)}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )


def _prepare(url: str, route: str) -> tuple[dict[str, str], str]:
    """wrk's headers and script for `route`: a tenant on the Enterprise plan; for bids,
    bench/bench_market.py's providers, works and distinct (work, provider) pairs."""
    with httpx.Client(base_url=url, timeout=60) as http:
        if route == "bids":
            from bench.bench_market import _bid_scripts, _provider

            providers = [_provider(http) for _ in range(PROVIDERS)]
            return {}, _bid_scripts(http, providers)[0]
        signed = http.post("/v1/tenants", json={"name": "Profiled", "type": "BOTH"}).json()
        http.put(
            f"/v1/admin/tenants/{signed['tenant_id']}/plan",
            json={"plan": "ENTERPRISE"},
            headers={"X-API-Key": OPERATOR_KEY},
        ).raise_for_status()
    headers = {"X-API-Key": signed["api_key"]}
    if route == "balance":
        return headers, 'wrk.path = "/v1/balance"\n'
    body = json.dumps({"tenant_id": signed["tenant_id"], "amount": "1.00", "currency": "USD"})
    return headers, _post_lua("/v1/deposits", body)


def profile(route: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        process, url = _start_aex(Path(tmp) / "data")
        try:
            headers, lua = _prepare(url, route)
            script = Path(tmp) / "load.lua"
            script.write_text(lua)
            wrk = ["wrk", "-t2", f"-c{CONNECTIONS}", "--latency", "-s", str(script)]
            for name, value in headers.items():
                wrk += ["-H", f"{name}: {value}"]
            time.sleep(3)  # the scoring kernel loads from its cache on a thread at startup
            subprocess.run([*wrk, "-d3s", url], check=True, capture_output=True)
            raw = RESULTS / f"profile-{route}.stacks.txt"  # py-spy collapsed stacks
            svg = IMAGES / f"flame-{route}.svg"
            spy = ["py-spy", "record", "-p", str(process.pid), "-r", str(RATE_HZ)]
            spy += ["-d", str(DURATION_S + 1)]  # blocking: whole stacks, never torn ones
            sampler = subprocess.Popen(
                [*spy, "-f", "raw", "-o", str(raw)], stdout=subprocess.DEVNULL
            )
            time.sleep(0.5)
            cpu_before = _cpu_s(process.pid)
            load = subprocess.run(
                [*wrk, f"-d{DURATION_S}s", url], check=True, capture_output=True, text=True
            ).stdout
            cpu_s = _cpu_s(process.pid) - cpu_before
            sampler.wait(timeout=60)
            flame = ["py-spy", "record", "-p", str(process.pid), "-r", str(RATE_HZ), "-d", "8"]
            flamer = subprocess.Popen(
                [*flame, "-f", "flamegraph", "-o", str(svg)],
                stdout=subprocess.DEVNULL,
            )
            time.sleep(0.5)
            subprocess.run([*wrk, "-d8s", url], check=True, capture_output=True)
            flamer.wait(timeout=60)
        finally:
            process.terminate()
            process.wait(timeout=10)
        requests = int(re.search(r"(\d+) requests in", load).group(1))  # type: ignore[union-attr]
        refused = re.search(r"Non-2xx or 3xx responses: (\d+)", load)
        cpu_us = cpu_s / requests * 1e6
        table = layer_table(raw.read_text().splitlines(), HANDLERS[route], cpu_us)
    return {
        "route": ROUTES[route],
        "requests_per_s": requests / DURATION_S,
        "cpu_us_per_request": cpu_us,
        "refused": int(refused.group(1)) if refused else 0,  # bids: pairs reused after a while
        "layers": [asdict(row) for row in table],
        "flame_graph": str(svg.relative_to(ROOT)),
    }


def render(result: dict[str, object]) -> str:
    lines = [
        f"{result['route']}: {result['requests_per_s']:.0f} req/s under py-spy, "
        f"{result['cpu_us_per_request']:.0f} µs CPU per request",
        f"  {'layer':40s} {'inclusive':>9s} {'own':>7s} {'own µs/req':>11s}",
    ]
    for row in result["layers"]:  # type: ignore[attr-defined]
        lines.append(
            f"  {row['name']:40s} {row['inclusive']:9.1%} {row['own']:7.1%}"
            f" {row['own_us_per_request']:11.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_api", description=__doc__)
    parser.add_argument("routes", nargs="*", help=f"of {', '.join(HANDLERS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.routes) - set(HANDLERS))
    if unknown:
        parser.error(f"unknown route {unknown[0]!r}; known: {', '.join(HANDLERS)}")
    args.routes = args.routes or list(HANDLERS)
    for tool in ("py-spy", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (py-spy: make install; wrk: apt-get install wrk)")
    RESULTS.mkdir(exist_ok=True)
    for route in args.routes:
        result = profile(route)
        (RESULTS / f"profile-{route}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
