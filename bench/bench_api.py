"""`python -m bench bench_api`: the live exchange's authenticated hot paths against a bare
Litestar JSON endpoint, served the same way (uvicorn, one worker, loopback) in the same run.

Load generator: wrk (`apt-get install -y wrk`); this benchmark installs nothing itself. Without
wrk it falls back to an httpx async generator in a separate process (lower ceiling: its
figures are a lower bound for both sides). Measured: requests/s and p99 latency of
GET /bare, authenticated GET /v1/balance and authenticated POST /v1/deposits (every request a
new deposit through the core ledger: one BEGIN IMMEDIATE transaction with the journal entry,
COMMIT with synchronous=FULL). Targets (issue 14): balance >= 60%, deposits >= 40% of the
bare endpoint's requests/s. Medians of AEX_BENCH_ROUNDS (>= 3) interleaved rounds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import Figure, rounds_from_env

DURATION_S = int(os.environ.get("AEX_BENCH_DURATION_S", "8"))
CONNECTIONS = int(os.environ.get("AEX_BENCH_CONNECTIONS", "32"))
THREADS = 2
OPERATOR_KEY = "aexop_bench_" + "0" * 40
# Issue 14: balance >= 60% of the bare endpoint, durable deposits >= 40%.
TARGETS = {"aex GET /v1/balance": 0.60, "aex POST /v1/deposits": 0.40}
ROUNDS = rounds_from_env()
MEASURES = ("bare GET /bare", "aex GET /v1/balance", "aex POST /v1/deposits")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            assert process.poll() is None, "server exited"
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


def _start_aex(
    data_dir: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`aex serve` on a free loopback port, rate limits out of the way, no DNS for webhooks."""
    port = _free_port()
    env = {
        **os.environ,
        "AEX_OPERATOR_KEY": OPERATOR_KEY,
        "AEX_RATE_LIMIT_PER_MINUTE": "100000000",
        "AEX_RATE_LIMIT_BURST": "10000000",
        "AEX_WEBHOOK_DNS": "off",
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "aex.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--data-dir", str(data_dir)], env=env, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    _wait(url + "/health", process)
    return process, url


def _start_bare() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--log-level", "warning", "--no-access-log"], stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    _wait(url + "/bare", process)
    return process, url


def _wrk(url: str, headers: dict[str, str], body: bytes | None) -> tuple[float, float]:
    command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if body is not None:
            script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n')
            script.write('wrk.headers["Content-Type"] = "application/json"\n')
    command += ["-s", script.name, url]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    Path(script.name).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    assert p99 is not None, output
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    assert non_2xx is None, f"errors during the run: {output}"
    return rps, float(p99.group(1)) * scale


def _httpx_load(url: str, headers: dict[str, str], body: bytes | None) -> tuple[float, float]:
    # A separate process, so that the generator does not share a core's GIL with the server.
    command = [sys.executable, "-m", "bench.httpx_load", url, str(DURATION_S), str(CONNECTIONS)]
    command.append(json.dumps(headers))
    if body is not None:
        command.append(body.decode())
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps, p99_ms = json.loads(output)
    return float(rps), float(p99_ms)


def main(argv: list[str] | None = None) -> list[Figure]:
    load = _wrk if shutil.which("wrk") else _httpx_load
    generator = "wrk" if load is _wrk else "httpx (for wrk: apt-get install -y wrk)"
    print(f"load generator: {generator}, {CONNECTIONS} connections, {DURATION_S} s per run")
    with tempfile.TemporaryDirectory() as tmp:
        aex, aex_url = _start_aex(Path(tmp) / "data")
        bare, bare_url = _start_bare()
        try:
            signed = httpx.post(aex_url + "/v1/tenants", json={"name": "Bench", "type": "BOTH"})
            tenant = signed.json()
            headers = {"X-API-Key": tenant["api_key"]}
            httpx.put(  # the Explorer plan's 1,000 requests/day would end the run early
                f"{aex_url}/v1/admin/tenants/{tenant['tenant_id']}/plan",
                json={"plan": "ENTERPRISE"},
                headers={"X-API-Key": OPERATOR_KEY},
            ).raise_for_status()
            deposit = json.dumps(
                {"tenant_id": tenant["tenant_id"], "amount": "1.00", "currency": "USD"}
            ).encode()
            # Interleaved rounds: bare, balance, deposits, then again; medians per measure.
            samples: dict[str, list[tuple[float, float]]] = {name: [] for name in MEASURES}
            for _ in range(ROUNDS):
                samples["bare GET /bare"].append(load(bare_url + "/bare", {}, None))
                samples["aex GET /v1/balance"].append(load(aex_url + "/v1/balance", headers, None))
                samples["aex POST /v1/deposits"].append(
                    load(aex_url + "/v1/deposits", headers, deposit)
                )
            results = {
                name: (
                    statistics.median(rps for rps, _ in runs),
                    statistics.median(p99 for _, p99 in runs),
                )
                for name, runs in samples.items()
            }
            final = httpx.get(aex_url + "/v1/balance", headers=headers).json()
        finally:
            for process in (aex, bare):
                process.terminate()
                process.wait(timeout=10)
    bare_rps = results["bare GET /bare"][0]
    figures = []
    for name, (rps, p99_ms) in results.items():
        ratio = rps / bare_rps
        target = TARGETS.get(name)
        verdict = "" if target is None else (" ok" if ratio >= target else " BELOW")
        print(f"{name:24s} {rps:9.0f} req/s  p99 {p99_ms:7.2f} ms  {ratio:6.1%} of bare{verdict}")
        if not name.startswith("bare"):
            figures.append(
                Figure(
                    "bench_api",
                    f"{name} ({generator.split()[0]})",
                    rps,
                    "req/s",
                    "bare Litestar GET /bare",
                    bare_rps,
                    ROUNDS,
                    TARGETS[name],
                )
            )
    print(f"deposits acknowledged and on the balance: {final['available']} USD")
    return figures


if __name__ == "__main__":
    for figure in main(sys.argv[1:]):
        print(figure.line())
