"""Schemathesis in make test: every operation of the live exchange, on both backends, with
the credential each operation's security names; 0 server errors, 0 schema violations.
Bounded (a few cases per operation); `make fuzz` runs the deeper pass."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.serve.contract_fuzz import SKIPPED, principals, run
from tests.serve.server import Backend, Server

EXAMPLES_PER_OPERATION = 5


def test_generated_requests_meet_no_server_error_and_no_schema_violation(
    own_backend: Backend, tmp_path: Path
) -> None:
    server = Server(tmp_path / "data", env=own_backend.env).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            who = principals(client)
            operations = client.get("/schema/openapi.json").json()["paths"]
        report = run(server.url, who, examples_per_operation=EXAMPLES_PER_OPERATION)
    finally:
        server.stop()
    assert report.failures == []
    counted = sum(
        1
        for item in operations.values()
        for m in item
        if m in ("get", "post", "put", "delete", "patch")
    )
    assert report.cases >= (counted - len(SKIPPED)) * 1  # every operation was exercised
