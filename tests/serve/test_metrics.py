"""Metrics and probes over real HTTP: the `route` label is a route template (random paths
share `<unmatched>`, so a scan cannot grow the series), `/metrics` needs the operator key
unless AEX_METRICS_PUBLIC=1, and `/health` / `/ready` are never rate limited."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import httpx
import pytest

from serve.notifications.events import UNMATCHED_ROUTE, RouteLabels
from tests.serve.conftest import Tenant
from tests.serve.server import OPERATOR_KEY, Server

OPERATOR = {"X-API-Key": OPERATOR_KEY}
RANDOM_PATHS = 300


def series(client: httpx.Client) -> list[str]:
    exposition = client.get("/metrics", headers=OPERATOR)
    assert exposition.status_code == 200, exposition.text
    # The series (name and labels), without their values.
    lines = exposition.text.splitlines()
    return [line.rsplit(" ", 1)[0] for line in lines if line.startswith("aex_http_")]


def test_random_paths_share_one_label_and_add_no_series(
    client: httpx.Client, tenant: Tenant
) -> None:
    # Every series this test touches exists before the scan: a scrape, an unmatched path, and
    # an unknown id on a real route.
    series(client)
    client.get("/v1/does-not-exist", headers=tenant.headers)
    client.get(f"/v1/work/work_{secrets.token_hex(8)}", headers=tenant.headers)
    before = series(client)
    for _ in range(RANDOM_PATHS):
        path = f"/{secrets.token_hex(4)}/{secrets.token_hex(6)}_{secrets.randbelow(10**6)}"
        assert client.get(path, headers=tenant.headers).status_code == 404
    client.get(f"/v1/work/work_{secrets.token_hex(8)}", headers=tenant.headers)
    after = series(client)
    new = sorted(set(after) - set(before))
    routes = {found for line in after for found in re.findall(r'route="([^"]*)"', line)}
    assert UNMATCHED_ROUTE in routes
    assert "/v1/work/{work_id}" in routes
    assert not [r for r in routes if r != UNMATCHED_ROUTE and "{" not in r and "_" in r]
    assert new == []  # 300 paths, no new series (main: one counter and 15 buckets per path)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"X-API-Key": "aexk_" + "0" * 64}, 401),
        ("tenant", 403),
        (OPERATOR, 200),
        ({"Authorization": f"Bearer {OPERATOR_KEY}"}, 200),  # a Prometheus scrape config
    ],
)
def test_metrics_need_the_operator_key(
    client: httpx.Client, tenant: Tenant, headers: dict[str, str] | str, status: int
) -> None:
    chosen = tenant.headers if headers == "tenant" else headers
    assert isinstance(chosen, dict)
    assert client.get("/metrics", headers=chosen).status_code == status


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "AEX_RATE_LIMIT_PER_MINUTE": "2",
        "AEX_RATE_LIMIT_BURST": "2",
        "AEX_ANONYMOUS_RATE_LIMIT_PER_MINUTE": "2",
    }
    server = Server(tmp_path_factory.mktemp("probes") / "data", env=env)
    yield server.start()
    server.stop()


def test_health_and_ready_are_never_rate_limited(strict_server: Server) -> None:
    with httpx.Client(base_url=strict_server.url, timeout=10) as client:
        key = client.post("/v1/tenants", json={"name": "P", "type": "CONSUMER"}).json()["api_key"]
        tenant = {"X-API-Key": key}
        limited = [client.get("/v1/tenants/me", headers=tenant).status_code for _ in range(4)]
        assert 429 in limited  # the tenant is at its limit ...
        assert 429 in [client.get("/v1/crl").status_code for _ in range(4)]  # and the address
        for path in ("/health", "/ready"):
            for headers in ({}, tenant):
                answers = [client.get(path, headers=headers) for _ in range(10)]
                assert [a.status_code for a in answers] == [200] * 10, path
        assert client.get("/ready").json()["status"] == "ready"


@pytest.fixture(scope="module")
def public_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"AEX_METRICS_PUBLIC": "1"}
    server = Server(tmp_path_factory.mktemp("public-metrics") / "data", env=env)
    yield server.start()
    server.stop()


def test_metrics_public_serves_them_without_a_credential(public_metrics: Server) -> None:
    with httpx.Client(base_url=public_metrics.url, timeout=10) as client:
        answer = client.get("/metrics")
        assert answer.status_code == 200, answer.text
        assert "aex_http_requests_total" in answer.text
        # Only /metrics became public: the rest still needs a credential.
        assert client.get("/v1/keys").status_code == 401


def test_route_labels_prefer_literal_segments_and_bound_everything_else() -> None:
    labels = RouteLabels(
        ["/v1/certificates/{cert_id}", "/v1/certificates/usage", "/v1/work", "/health"]
    )
    assert labels.label("/v1/certificates/usage") == "/v1/certificates/usage"
    assert labels.label("/v1/certificates/cert_0011") == "/v1/certificates/{cert_id}"
    assert labels.label("/v1/work/") == "/v1/work"
    assert labels.label("/v1/work/x/y") == UNMATCHED_ROUTE
    assert labels.label("/" + "a" * 5000) == UNMATCHED_ROUTE


def test_route_labels_read_litestar_paths_and_let_a_path_parameter_take_the_rest() -> None:
    labels = RouteLabels(["/v1/work/{work_id:str}", "/schema/assets/{file_path:path}"])
    assert labels.label("/v1/work/w_1") == "/v1/work/{work_id}"
    assert labels.label("/schema/assets/a/b/c.js") == "/schema/assets/{file_path}"
    assert labels.label("/schema/assets") == UNMATCHED_ROUTE  # a file is needed
    assert labels.serves("/v1/work/w_1")
    assert not labels.serves("/v1/work/w_1/x")
