"""Webhook SSRF (issue 11, item 9): endpoints on loopback, private, link-local and metadata
addresses are refused at registration and at every delivery, unless the operator allows them.

Traffic rule: every connection these tests cause goes to 127.0.0.1. Refusals of other
addresses are proven without connecting: at registration (422 before anything is resolved
or written), and at delivery time with an injected resolver (a static table maps test names
to the refused addresses) and an injected sender whose every call is recorded, so that "no
connection was attempted" is an assertion, not a hope. On a real server the delivery-time
check is shown with a loopback canary: a name that resolves to 127.0.0.1 on a server that
does not allow private addresses; had the server connected, the canary would have heard it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest

from aex.core import CredentialKind, Plan, credential_digest, format_credential
from serve.market.usecases import Market
from serve.notifications.endpoints import EndpointPolicy, Pinned, StaticResolver
from serve.notifications.events import Delivered
from serve.notifications.webhooks import WEBHOOK_ATTEMPTS_MAX, Webhooks
from serve.secret_box import SecretBox, webhook_secret_context
from serve.stores.base import KeyRecord, ProviderRecord, TenantRecord
from tests.conftest import Stores
from tests.serve.conftest import sign_up
from tests.serve.market_helpers import consumer, submit_work
from tests.serve.server import Backend, Server, free_port

HOSTS = (
    "metadata.test=169.254.169.254,private.test=10.1.2.3,mapped.test=::ffff:169.254.169.254,"
    "ec2v6.test=fd00:ec2::254,loop.test=127.0.0.1"
)


class Canary:
    """A loopback receiver that counts what reaches it (answers 204)."""

    def __init__(self, status: int = 204) -> None:
        self.paths: list[str] = []
        self.hosts: list[str] = []
        canary = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                canary.paths.append(self.path)
                canary.hosts.append(str(self.headers["host"]))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_port)


@pytest.fixture
def canary() -> Iterator[Canary]:
    running = Canary()
    yield running
    running.server.shutdown()


@pytest.fixture
def strict_server(tmp_path: Any, own_backend: Backend) -> Iterator[Server]:
    """A server that does NOT allow private addresses (the production default)."""
    env = {
        **own_backend.env,
        "AEX_WEBHOOK_ALLOW_PRIVATE": "0",
        "AEX_WEBHOOK_HOSTS": HOSTS,
        "AEX_WEBHOOK_BACKOFF_MS": "5",
    }
    running = Server(tmp_path / "data", env=env).start()
    yield running
    running.stop()


def _agent(endpoint: str) -> dict[str, Any]:
    return {
        "name": "HookBot",
        "type": "AI_AGENT",
        "capabilities": ["code_review"],
        "category": "TECHNOLOGY",
        "endpoint": endpoint,
    }


REFUSED_ENDPOINTS = [
    "http://127.0.0.1:{port}/hook",
    "http://[::1]:{port}/hook",
    "http://localhost:{port}/hook",
    "http://api.localhost:{port}/hook",
    "http://loop.test:{port}/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://metadata.test/latest/meta-data/",
    "http://mapped.test/",
    "http://ec2v6.test/",
    "http://10.0.0.5/hook",
    "http://192.168.1.1/hook",
    "http://private.test/hook",
    "http://[fe80::1]/hook",
    "http://0.0.0.0:{port}/hook",
    "http://127.1:{port}/hook",
    "http://0x7f000001:{port}/hook",
]


def test_private_loopback_and_metadata_endpoints_are_refused_at_registration(
    strict_server: Server, canary: Canary
) -> None:
    with httpx.Client(base_url=strict_server.url, timeout=30) as client:
        owner = sign_up(client, "Prober", "PROVIDER")
        for template in REFUSED_ENDPOINTS:
            endpoint = template.format(port=canary.port)
            refused = client.post("/v1/providers", json=_agent(endpoint), headers=owner.headers)
            assert refused.status_code == 422, (endpoint, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["errors"][0]["field"] == "endpoint", endpoint
        assert (
            client.get("/v1/providers", headers=owner.headers).json()["data"] == []
        )  # nothing written
        # A public name that does not resolve now is accepted (every delivery checks it again).
        accepted = client.post(
            "/v1/providers", json=_agent("https://agent.example/hook"), headers=owner.headers
        )
        assert accepted.status_code == 201, accepted.text
        path = f"/v1/providers/{accepted.json()['provider_id']}"
        moved = client.patch(
            path, json={"endpoint": "http://metadata.test/"}, headers=owner.headers
        )
        assert moved.status_code == 422
        assert moved.json()["errors"][0]["field"] == "endpoint"
        assert client.get(path, headers=owner.headers).json()["endpoint"] == (
            "https://agent.example/hook"
        )
    assert canary.paths == []


def test_a_name_that_rebinds_to_loopback_is_refused_at_delivery_without_connecting(
    strict_server: Server, own_backend: Backend, canary: Canary
) -> None:
    with httpx.Client(base_url=strict_server.url, timeout=30) as client:
        owner = sign_up(client, "Rebinder", "PROVIDER")
        created = client.post(
            "/v1/providers", json=_agent("https://agent.example/hook"), headers=owner.headers
        ).json()
        key = {"X-API-Key": created["api_key"]}
        body = {"provider_id": created["provider_id"], "categories": ["TECHNOLOGY"]}
        assert client.post("/v1/subscriptions", json=body, headers=key).status_code == 201
        # DNS rebinding, as the server sees it: the endpoint it accepted now names a host that
        # resolves to loopback (here: an endpoint stored before the rule existed, on a name the
        # server's resolver maps to 127.0.0.1, where the canary listens).
        with own_backend.market_db(strict_server.data_dir) as db:
            db.run(
                lambda session: session.connection.execute(
                    "UPDATE providers SET endpoint = ? WHERE provider_id = ?",
                    (f"http://loop.test:{canary.port}/hook?token=s3cret", created["provider_id"]),
                )
            )
        submit_work(client, consumer(client), bid_window_seconds=300)
        deadline = time.monotonic() + 20
        while True:
            deliveries = client.get("/v1/notifications/deliveries", headers=key).json()["data"]
            if deliveries and deliveries[0]["status"] == "FAILED":
                break
            assert time.monotonic() < deadline, deliveries
            time.sleep(0.1)
    assert deliveries[0]["attempts"] == WEBHOOK_ATTEMPTS_MAX
    assert deliveries[0]["last_error"] == "address_refused"
    assert deliveries[0]["last_status_code"] is None
    assert deliveries[0]["endpoint"] == f"http://loop.test:{canary.port}/hook"
    assert canary.paths == []  # the server never connected
    assert "s3cret" not in strict_server.log_path.read_text()


def test_delivery_errors_are_coarse_and_urls_are_shown_without_credentials(
    client: httpx.Client, server: Server, canary: Canary
) -> None:
    # The session server allows loopback (AEX_WEBHOOK_ALLOW_PRIVATE=1, tests/serve/server.py).
    closed_port = free_port()  # nothing listens there: the OS answers "connection refused"
    owner = sign_up(client, "Coarse", "PROVIDER")
    failing = Canary(status=500)
    try:
        endpoints = {
            "LEGAL": f"http://127.0.0.1:{closed_port}/hook",
            "FINANCE": f"http://user:hunter2@127.0.0.1:{failing.port}/hook?token=t0ken",
        }
        plan = {"plan": "BUSINESS"}
        path = f"/v1/admin/tenants/{owner.tenant_id}/plan"
        assert client.put(path, json=plan, headers={"X-API-Key": _operator()}).status_code == 200
        keys = {}
        for category, endpoint in endpoints.items():
            created = client.post(
                "/v1/providers", json=_agent(endpoint), headers=owner.headers
            ).json()
            keys[category] = {"X-API-Key": created["api_key"]}
            body = {"provider_id": created["provider_id"], "categories": [category]}
            assert client.post("/v1/subscriptions", json=body, headers=keys[category]).status_code
        buyer = consumer(client, plan="BUSINESS")
        for category in endpoints:
            submit_work(client, buyer, category=category, bid_window_seconds=300)
        seen = {c: _first_delivery(client, keys[c]) for c in endpoints}
    finally:
        failing.server.shutdown()
    assert seen["LEGAL"]["last_error"] == "connect_failed"
    assert seen["LEGAL"]["last_status_code"] is None
    assert seen["FINANCE"]["last_error"] == "http_status_500"
    assert seen["FINANCE"]["last_status_code"] == 500
    assert seen["FINANCE"]["endpoint"] == f"http://127.0.0.1:{failing.port}/hook"
    assert failing.paths
    assert all(p == "/hook?token=t0ken" for p in failing.paths)
    log = server.log_path.read_text()
    assert "hunter2" not in log
    assert "t0ken" not in log


def test_a_named_endpoint_is_delivered_to_its_resolved_address_with_its_name_as_host(
    client: httpx.Client, canary: Canary
) -> None:
    # The session server resolves hooks.test to 127.0.0.1 (AEX_WEBHOOK_HOSTS): the request
    # reaches the address the server checked, and carries the endpoint's name as its Host.
    owner = sign_up(client, "Named", "PROVIDER")
    endpoint = f"http://hooks.test:{canary.port}/hook"
    created = client.post("/v1/providers", json=_agent(endpoint), headers=owner.headers).json()
    key = {"X-API-Key": created["api_key"]}
    body = {"provider_id": created["provider_id"], "categories": ["HEALTH"]}
    assert client.post("/v1/subscriptions", json=body, headers=key).status_code == 201
    submit_work(client, consumer(client), category="HEALTH", bid_window_seconds=300)
    delivered = _first_delivery(client, key, status="DELIVERED")
    assert delivered["endpoint"] == endpoint
    assert canary.paths == ["/hook"]
    assert canary.hosts == [f"hooks.test:{canary.port}"]


def _operator() -> str:
    from tests.serve.server import OPERATOR_KEY

    return OPERATOR_KEY


def _first_delivery(
    client: httpx.Client, key: dict[str, str], status: str | None = None
) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        found = client.get("/v1/notifications/deliveries", headers=key).json()["data"]
        if found and found[0]["attempts"] >= 1:
            if status is None and found[0]["last_error"] is not None:
                return dict(found[0])
            if status is not None and found[0]["status"] == status:
                return dict(found[0])
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


# -- delivery time, in process: an injected resolver and an injected sender ------------------

PROVIDER_ID = "prov_00000000000000b1"
STUB_HOSTS = {
    "metadata.test": ("169.254.169.254",),
    "ec2v6.test": ("fd00:ec2::254",),
    "mapped.test": ("::ffff:169.254.169.254",),
    "private.test": ("10.0.0.7",),
    "linklocal.test": ("169.254.7.7",),
    "mixed.test": ("93.184.215.14", "10.0.0.1"),  # one bad address refuses the name
    "public.test": ("93.184.215.14", "2606:2800:220:1::"),
}


class Recorder:
    """The injected sender: records every connection the webhooks would make."""

    def __init__(self) -> None:
        self.calls: list[Pinned] = []

    async def __call__(self, pinned: Pinned, body: bytes, headers: dict[str, str]) -> int:
        self.calls.append(pinned)
        return 204


BOX = SecretBox(b"s" * 32)


def _provider(store: Stores, endpoint: str) -> None:
    tenant_id = "ten_00000000000000b1"
    store.keys.create_tenant(
        TenantRecord(tenant_id, "Hooked", "PROVIDER", Plan.EXPLORER, "ACTIVE", 1),
        KeyRecord(
            "key_b1",
            tenant_id,
            "TENANT",
            credential_digest(format_credential(CredentialKind.TENANT_KEY, "3" * 64)),
            "aex_",
            1,
        ),
    )
    provider = ProviderRecord(
        PROVIDER_ID, tenant_id, "bot", "AI_AGENT", ("x",), "T", endpoint, 1, 1
    )
    digest = credential_digest(format_credential(CredentialKind.TENANT_KEY, "4" * 64))
    key = KeyRecord("key_b2", tenant_id, "PROVIDER", digest, "aex_", 1, PROVIDER_ID)
    assert store.keys.create_provider(provider, key, "d" * 64, check_agents=lambda _: None) is None
    sealed = BOX.seal("aex_whsec_" + "5" * 64, context=webhook_secret_context(PROVIDER_ID))
    assert store.keys.set_webhook_secret(tenant_id, PROVIDER_ID, sealed)


def _deliver(store: Stores, endpoint: str, *, allow_private: bool) -> tuple[Recorder, list[Any]]:
    _provider(store, endpoint)
    sent = Recorder()
    policy = EndpointPolicy(StaticResolver(STUB_HOSTS), allow_private=allow_private)
    webhooks = Webhooks(Market(store.market), policy, box=BOX, backoff_ms=1, send=sent)
    payload = {"work_id": "work_1", "recipients": [PROVIDER_ID]}
    event = Delivered(1, "evt_00000000000000b1", "work.submitted", "work_1", 5, payload)

    async def fan_out_and_attempt() -> None:  # the tail's call, then the attempts it started
        await webhooks.fan_out([event])
        await asyncio.gather(*webhooks._tasks)

    asyncio.run(fan_out_and_attempt())
    rows = store.market.read(
        "SELECT status, attempts, last_error, endpoint FROM webhook_deliveries"
        " WHERE provider_id = ?",
        (PROVIDER_ID,),
    )
    return sent, rows


@pytest.mark.parametrize(
    ("endpoint", "allow_private"),
    [
        ("http://metadata.test/latest/meta-data/", False),
        ("http://metadata.test/latest/meta-data/", True),  # metadata: refused even when allowed
        ("http://ec2v6.test/", True),
        ("http://mapped.test/", True),
        ("http://private.test/hook", False),
        ("http://linklocal.test/hook", False),
        ("http://mixed.test/hook", False),
        ("http://unknown.test/hook", False),  # does not resolve: no connection either
    ],
)
def test_a_refused_address_at_delivery_time_is_never_connected_to(
    store: Stores, endpoint: str, allow_private: bool
) -> None:
    sent, rows = _deliver(store, endpoint, allow_private=allow_private)
    assert sent.calls == []
    ((status, attempts, last_error, _),) = rows
    assert (status, attempts) == ("FAILED", WEBHOOK_ATTEMPTS_MAX)
    assert last_error in {"address_refused", "dns_failed"}


def test_a_delivery_connects_to_the_checked_address_only(store: Stores) -> None:
    sent, rows = _deliver(store, "https://u:p@public.test:8443/hook?k=v", allow_private=False)
    assert [(c.address, c.url) for c in sent.calls] == [
        ("93.184.215.14", "https://u:p@93.184.215.14:8443/hook?k=v")
    ]
    assert sent.calls[0].endpoint.host_header == "public.test:8443"  # Host and TLS name
    assert rows == [("DELIVERED", 1, None, "https://public.test:8443/hook")]
