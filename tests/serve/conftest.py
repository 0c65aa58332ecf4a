"""Fixtures for the live-exchange tests: one shared real server per session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.serve.server import BACKENDS, OPERATOR_KEY, Backend, Server


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Every test that uses the shared server runs once per backend (SQLite; PostgreSQL+Redis)."""
    chosen = Backend(request.param)
    yield chosen
    chosen.cleanup()


@pytest.fixture(params=BACKENDS)
def own_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A backend of the test's own (a fresh PostgreSQL schema and Redis prefix), for tests that
    start, kill and restart servers and must not share state with the session server."""
    chosen = Backend(request.param)
    yield chosen
    chosen.cleanup()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp(f"exchange-{backend.name}") / "data"
    running = Server(data_dir, env=backend.env).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


@pytest.fixture(scope="session")
def operator(client: httpx.Client) -> dict[str, str]:
    return {"X-API-Key": OPERATOR_KEY}


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    api_key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


def sign_up(client: httpx.Client, name: str = "Acme", kind: str = "BOTH") -> Tenant:
    response = client.post("/v1/tenants", json={"name": name, "type": kind})
    assert response.status_code == 201, response.text
    body = response.json()
    return Tenant(body["tenant_id"], body["api_key"], body["key_id"])


@pytest.fixture
def tenant(client: httpx.Client) -> Tenant:
    return sign_up(client, "Tenant A")


@pytest.fixture
def other_tenant(client: httpx.Client) -> Tenant:
    return sign_up(client, "Tenant B")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
