"""One JSON log format (serve/telemetry/logs.py): every line a real `aex serve` writes, uvicorn's
own included, is one JSON object with an RFC 3339 UTC `ts`; request lines carry the request id and
the trace id; no line is written twice; one startup line says what runs, holding no secret."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

from serve.telemetry import logs, tracing
from tests.serve.server import JWT_SECRET, OPERATOR_KEY, TEST_ENV, free_port

RFC3339_UTC_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
FIELDS = ("ts", "level", "logger", "msg")


class Running:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path, self.stderr_path = tmp_path / "stdout", tmp_path / "stderr"
        command = [sys.executable, "-m", "aex.cli", "serve", "--port", str(self.port)]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [*command, "--data-dir", str(tmp_path / "data")],
                env={**os.environ, **TEST_ENV},
                stdout=out,
                stderr=err,
            )
        deadline = time.monotonic() + 120  # slow starts on a loaded box
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, self.stderr_path.read_text()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)

    def stop(self) -> tuple[str, str]:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        return self.stdout_path.read_text(), self.stderr_path.read_text()


CALLER_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_TRACEPARENT = f"00-{CALLER_TRACE_ID}-b7ad6b7169203331-01"


@dataclass(frozen=True)
class Run:
    """What one server wrote, start to stop, with some requests and one bad one between."""

    port: int
    api_key: str
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    server = Running(tmp_path_factory.mktemp("logged"))
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            signed_up = client.post("/v1/tenants", json={"name": "Logged", "type": "CONSUMER"})
            assert signed_up.status_code == 201, signed_up.text
            api_key = signed_up.json()["api_key"]
            headers = {"X-API-Key": api_key, "X-Request-ID": "rq-1"}
            assert client.get("/v1/tenants/me", headers=headers).status_code == 200
            traced = {"traceparent": CALLER_TRACEPARENT, "X-Request-ID": "rq-traced"}
            assert client.get("/health", headers=traced).status_code == 200
            assert client.get("/no/such/path").status_code in (401, 404)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
            raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")  # uvicorn's own logger warns about it
            raw.recv(1024)
        time.sleep(0.3)  # access lines are written in batches, at most 50 ms late
    finally:
        stdout, stderr = server.stop()
    return Run(server.port, api_key, stdout, stderr)


def parsed(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    assert all(line.strip() for line in lines), "an empty line"
    found = [json.loads(line) for line in lines]  # raises on any line that is not JSON
    assert all(isinstance(line, dict) for line in found)
    return found


def test_every_line_is_json_with_rfc3339_ts_request_lines_carry_ids_and_none_repeats(
    run: Run,
) -> None:
    stdout, stderr = run.stdout, run.stderr
    assert stdout == ""
    lines = parsed(stderr)
    raw_lines = stderr.splitlines()
    assert len(raw_lines) == len(set(raw_lines)), "a line written twice"
    for line in lines:
        assert all(field in line for field in FIELDS), line
        assert RFC3339_UTC_MS.fullmatch(line["ts"]), line["ts"]
    requests = [line for line in lines if line["logger"] == "aex.access"]
    assert {line["route"] for line in requests} >= {"/health", "/v1/tenants", "/v1/tenants/me"}
    for line in requests:
        assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", line["request_id"]), line
        assert re.fullmatch(r"[0-9a-f]{32}", line["trace_id"]), line
        assert re.fullmatch(r"[0-9a-f]{16}", line["span_id"]), line
    assert [line["request_id"] for line in requests if line["route"] == "/v1/tenants/me"] == [
        "rq-1"
    ]
    assert len({line["trace_id"] for line in requests}) == len(requests)  # a trace per request
    # A caller's trace is continued (exporting nothing, the server still joins it), in a span
    # of its own.
    (traced,) = [line for line in requests if line["request_id"] == "rq-traced"]
    assert traced["trace_id"] == CALLER_TRACE_ID
    assert traced["span_id"] != "b7ad6b7169203331"
    uvicorn_lines = [line for line in lines if line["logger"].startswith("uvicorn")]
    assert len(uvicorn_lines) == 1, uvicorn_lines
    assert "invalid http request" in uvicorn_lines[0]["msg"].lower()
    for secret in (OPERATOR_KEY, JWT_SECRET, run.api_key):
        assert secret not in stderr


def test_one_startup_line_says_what_runs_and_holds_no_secret(run: Run) -> None:
    starts = [line for line in parsed(run.stderr) if line["msg"] == "aex serve starting"]
    assert len(starts) == 1
    start = starts[0]
    assert start["logger"] == "aex.serve"
    assert start["backend"] == "sqlite"
    assert start["data_dir"].endswith("data")
    assert start["workers"] == 1
    assert start["listen"] == f"127.0.0.1:{run.port}"
    assert start["url"] == f"http://127.0.0.1:{run.port}"
    # Where the operator key is, never the key: the variable's name when it is set there.
    assert start["operator_key"] == "AEX_OPERATOR_KEY"
    assert start["adapters"] == {"redis": False, "nats": False, "otlp": False}
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", start["version"])
    assert OPERATOR_KEY not in json.dumps(start)
    assert JWT_SECRET not in json.dumps(start)


def test_a_database_url_is_shown_by_host_and_database_never_by_password() -> None:
    shown = logs.database_shown("postgresql://aex:s3cret-pw@db.internal:5433/market?x=1", "d")
    assert shown == {"backend": "postgres", "database": "db.internal:5433/market"}
    assert "s3cret" not in json.dumps(shown)
    assert logs.database_shown(None, "/var/aex") == {"backend": "sqlite", "data_dir": "/var/aex"}


def test_a_library_line_within_a_request_carries_the_request_id_and_the_trace() -> None:
    record = logging.LogRecord("httpx", logging.WARNING, __file__, 1, "slow %s", ("call",), None)
    token = logs.REQUEST_ID.set("rq-42")
    tracing.use_provider(TracerProvider())
    try:
        with tracing.span("request") as current:
            line = json.loads(logs.JsonFormatter().format(record))
            ids = current.get_span_context()
    finally:
        tracing.use_provider(None)
        logs.REQUEST_ID.reset(token)
    assert line["msg"] == "slow call"
    assert (line["level"], line["logger"], line["request_id"]) == ("warning", "httpx", "rq-42")
    assert line["trace_id"] == format(ids.trace_id, "032x")
    assert line["span_id"] == format(ids.span_id, "016x")
    assert RFC3339_UTC_MS.fullmatch(line["ts"])
    outside = json.loads(logs.JsonFormatter().format(record))
    assert "request_id" not in outside
    assert "trace_id" not in outside


def test_timestamps_are_utc_with_milliseconds() -> None:
    assert logs.rfc3339(1_796_234_400.123) == "2026-12-02T18:00:00.123Z"
    assert logs.rfc3339(0.0) == "1970-01-01T00:00:00.000Z"
