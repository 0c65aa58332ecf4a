"""Schemathesis against a live exchange: cases generated from /schema/openapi.json, sent with
the credential each operation's `security` names (the operator key, a consumer tenant's key,
a provider's key), every response checked: no 5xx, status, content type and body conforming
to the document (problem+json errors included). Used by tests/serve/test_schemathesis.py
(bounded, in make test) and `make fuzz` (deeper)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.serve.market_helpers import consumer, provider
from tests.serve.server import OPERATOR_KEY

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# An endless server-sent event stream: no response to check (tests/serve/test_market_events.py).
SKIPPED = {("GET", "/v1/notifications/stream")}
# Routes a provider's key calls (bids, its contracts, its notifications); other authenticated
# routes are called with the consumer tenant's key.
PROVIDER_PATHS = ("/v1/bids", "/v1/contracts/", "/v1/notifications/", "/v1/subscriptions")


@dataclass
class Principals:
    operator: dict[str, str]
    consumer: dict[str, str]
    provider: dict[str, str]

    def for_operation(
        self, method: str, path: str, security: list[dict[str, Any]] | None
    ) -> dict[str, str]:
        if not security:
            return {}
        if any("operatorKey" in requirement for requirement in security):
            return self.operator
        if (
            (path.startswith(PROVIDER_PATHS) and method != "GET")
            or path.startswith("/v1/notifications")
            or path == "/v1/work/open"  # a provider key lists its own matching open work
        ):
            return self.provider
        return self.consumer


def principals(client: httpx.Client) -> Principals:
    tenant = consumer(client, plan="BUSINESS")
    agent = provider(client, plan="PROFESSIONAL")
    return Principals({"X-API-Key": OPERATOR_KEY}, tenant.headers, agent.headers)


@dataclass
class Report:
    cases: int = 0
    failures: list[str] = field(default_factory=list)


def run(base_url: str, who: Principals, *, examples_per_operation: int) -> Report:
    """Every operation, `examples_per_operation` generated cases each; failures collected
    (one line per operation and kind of failure), never stopping at the first."""
    schema = schemathesis.openapi.from_url(base_url + "/schema/openapi.json")
    report = Report()
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in SKIPPED:
            continue
        headers = who.for_operation(key[0], key[1], operation.definition.raw.get("security"))
        _fuzz(operation, base_url, headers, examples_per_operation, report)
    return report


def _fuzz(
    operation: Any, base_url: str, headers: dict[str, str], examples: int, report: Report
) -> None:
    seen: set[str] = set()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        report.cases += 1
        try:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)
        except BaseException as error:  # schemathesis's FailureGroup or a check's AssertionError
            text = str(error).strip().splitlines()
            line = f"{operation.method.upper()} {operation.path}: {' | '.join(text[:6])[:600]}"
            first = line[:160]
            if first not in seen:
                seen.add(first)
                report.failures.append(line)

    try:
        check()
    except BaseException as error:  # hypothesis re-raises what it shrank to
        line = f"{operation.method.upper()} {operation.path}: {str(error)[:600]}"
        if line[:160] not in seen:
            report.failures.append(line)


def main(argv: list[str] | None = None) -> int:
    """`make fuzz`: a deeper run against a fresh server on each backend given."""
    import argparse
    import tempfile
    from pathlib import Path

    from tests.serve.server import Backend, Server

    parser = argparse.ArgumentParser(prog="python -m tests.serve.contract_fuzz")
    parser.add_argument("--examples", type=int, default=200, help="cases per operation (200)")
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgres"))
    args = parser.parse_args(argv)
    total, failed = 0, 0
    for name in args.backend or ["sqlite", "postgres"]:
        backend = Backend(name)
        try:
            with tempfile.TemporaryDirectory() as scratch:
                server = Server(Path(scratch) / "data", env=backend.env).start()
                try:
                    with httpx.Client(base_url=server.url, timeout=30) as client:
                        who = principals(client)
                    report = run(server.url, who, examples_per_operation=args.examples)
                finally:
                    server.stop()
        finally:
            backend.cleanup()
        print(f"{name}: {report.cases} cases, {len(report.failures)} failures")
        for line in report.failures:
            print("  " + line)
        total, failed = total + report.cases, failed + len(report.failures)
    print(f"fuzz: {total} cases, {failed} failures")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
