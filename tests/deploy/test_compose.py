"""compose.yaml: PostgreSQL, Redis and NATS with JetStream where `make run-cluster` looks for
them (loopback only), each with a health check; the exchange's own service (profile
"exchange") built from the Dockerfile, locked down, started once the three are healthy."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.deploy.tools import COMPOSE, ROOT, settings_read

SERVICES = ("postgres", "redis", "nats")


def compose() -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return found


def makefile_default(name: str) -> str:
    (value,) = re.findall(rf"^{name} \?= (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    return value


def test_the_services_listen_where_make_run_cluster_connects() -> None:
    services = compose()["services"]
    ports = {name: services[name]["ports"] for name in SERVICES}
    assert ports == {
        "postgres": ["127.0.0.1:5432:5432"],
        "redis": ["127.0.0.1:6379:6379"],
        "nats": ["127.0.0.1:4222:4222"],
    }
    assert makefile_default("DATABASE_URL") == "postgresql://postgres@127.0.0.1:5432/postgres"
    assert makefile_default("REDIS_URL") == "redis://127.0.0.1:6379/0"
    assert makefile_default("NATS_URL") == "nats://127.0.0.1:4222"
    # the URL has no password: the compose PostgreSQL trusts, like .ci/run's local server
    assert services["postgres"]["environment"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"


def test_nats_runs_jetstream_on_a_volume_and_every_service_is_health_checked() -> None:
    document = compose()
    services = document["services"]
    command = services["nats"]["command"]
    assert "-js" in command
    assert command[command.index("-sd") + 1] == "/data"
    assert "nats-data:/data" in services["nats"]["volumes"]
    for name in SERVICES:
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert "js-enabled-only=true" in " ".join(services["nats"]["healthcheck"]["test"])
    assert set(document["volumes"]) == {"postgres-data", "nats-data", "exchange-data"}


def test_every_image_is_pinned() -> None:
    for name, service in compose()["services"].items():
        image = service["image"]
        repository, _, tag = image.partition(":")
        assert repository, name
        assert tag not in {"", "latest"}, name


def test_the_exchange_service_is_the_dockerfile_locked_down() -> None:
    exchange = compose()["services"]["exchange"]
    assert exchange["profiles"] == ["exchange"]  # `up postgres redis nats` leaves it out
    assert exchange["build"] == "."
    assert exchange["read_only"] is True
    assert exchange["tmpfs"] == ["/tmp"]
    assert exchange["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in exchange["security_opt"]
    assert exchange["ports"] == ["127.0.0.1:8080:8080"]
    assert exchange["volumes"] == ["exchange-data:/var/lib/aex"]
    assert exchange["depends_on"] == {name: {"condition": "service_healthy"} for name in SERVICES}
    env = exchange["environment"]
    assert set(env) <= settings_read()
    assert env["AEX_DATABASE_URL"] == "postgresql://postgres@postgres:5432/postgres"
    assert env["AEX_REDIS_URL"] == "redis://redis:6379/0"
    assert env["AEX_NATS_URL"] == "nats://nats:4222"
    # several processes on the shared backends, the Dockerfile's data directory
    assert exchange["command"][-2:] == ["--workers", "2"]
    assert "/var/lib/aex" in exchange["command"]
