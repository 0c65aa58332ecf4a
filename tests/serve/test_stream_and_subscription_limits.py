"""Resource exhaustion (issue 11, item 11, streams and subscriptions), over a real server on
both backends: a provider key holds at most `notification_streams_per_key_max` open streams
(429 problem+json beyond); an open stream ends within AEX_STREAM_REAUTHORISE_S once its
tenant is suspended or its key revoked; a provider's subscriptions are limited by its plan
(403, nothing written); and work is matched to subscriptions through the category index
(subscription_categories), not a scan."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aex.core import limits
from aex.core.plans import SUBSCRIPTIONS_PER_PROVIDER_MAX, Plan
from serve.market.usecases import _MATCHING_SELECT, subscribed_providers
from serve.stores.market_schema import PG_SUBSCRIPTION_INDEX_SCHEMA, SUBSCRIPTION_INDEX_SCHEMA
from tests.conftest import Stores
from tests.serve.market_helpers import OPERATOR, Provider, consumer, provider, submit_work
from tests.serve.server import Backend, Server

REAUTHORISE_S = 0.5


@pytest.fixture
def limited(tmp_path: Path, own_backend: Backend) -> Iterator[tuple[Server, Backend]]:
    env = {**own_backend.env, "AEX_STREAM_REAUTHORISE_S": str(REAUTHORISE_S)}
    running = Server(tmp_path / "data", env=env).start()
    yield running, own_backend
    running.stop()


class Stream:
    """One open notification stream over its own socket, read on a thread: its events, and
    whether it ended. close() shuts the socket down (a FIN the server sees at once)."""

    def __init__(self, server: Server, api_key: str) -> None:
        self.status: int | None = None
        self.events: list[tuple[str, str]] = []
        self.ended = threading.Event()
        self.opened = threading.Event()
        self._socket = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        request = (
            "GET /v1/notifications/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"X-API-Key: {api_key}\r\nAccept: text/event-stream\r\n\r\n"
        )
        self._socket.sendall(request.encode())
        threading.Thread(target=self._run, daemon=True).start()
        assert self.opened.wait(10)

    def _run(self) -> None:
        try:
            self._socket.settimeout(None)
            reader = self._socket.makefile("rb")
            self.status = int(reader.readline().split()[1])
            length, chunked = 0, False
            while (header := reader.readline().strip()) != b"":
                name, _, value = header.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                chunked |= name.lower() == "transfer-encoding" and "chunked" in value
            if self.status != 200:
                body = reader.read(length) if not chunked else _dechunk(reader)
                self.body = json.loads(body)
                self.opened.set()
                return
            name = ""
            for raw in reader:  # chunk-size lines are neither event: nor data: lines
                line = raw.decode().rstrip("\r\n")
                if line == "0":  # the last chunk: the server ended the response
                    break
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    self.events.append((name, line.split(":", 1)[1].strip()))
                    if name == "ready":
                        self.opened.set()
        except (OSError, ValueError, IndexError):
            pass
        finally:
            self.opened.set()
            self.ended.set()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()


def _dechunk(reader: Any) -> bytes:
    body = b""
    while (size := int(reader.readline().strip(), 16)) > 0:
        body += reader.read(size)
        reader.readline()
    return body


def _key_id(client: httpx.Client, agent: Provider) -> str:
    keys = client.get("/v1/keys", headers=agent.owner.headers).json()["data"]
    return str(next(k["key_id"] for k in keys if k["provider_id"] == agent.provider_id))


def test_a_provider_key_holds_a_bounded_number_of_streams(
    limited: tuple[Server, Backend],
) -> None:
    server, _ = limited
    with httpx.Client(base_url=server.url, timeout=30) as client:
        agent = provider(client)
        streams = [
            Stream(server, agent.api_key) for _ in range(limits.notification_streams_per_key_max)
        ]
        try:
            assert [s.status for s in streams] == [200] * limits.notification_streams_per_key_max
            refused = Stream(server, agent.api_key)
            assert refused.status == 429
            assert refused.body["errors"] == [
                {"field": "notification_streams", "reason": "streams_per_key_max"}
            ]
            # Closing one frees its place (noticed when the server next writes to it).
            streams.pop().close()
            deadline = time.monotonic() + 5  # the server sees the FIN at once
            while True:
                again = Stream(server, agent.api_key)
                if again.status == 200:
                    streams.append(again)
                    break
                assert time.monotonic() < deadline, "a closed stream's place was never freed"
                time.sleep(0.5)
        finally:
            for stream in streams:
                stream.close()


@pytest.mark.parametrize("how", ["suspend_tenant", "revoke_key"])
def test_an_open_stream_ends_once_its_credential_is_no_longer_valid(
    limited: tuple[Server, Backend], how: str
) -> None:
    server, _ = limited
    with httpx.Client(base_url=server.url, timeout=30) as client:
        agent = provider(client)
        stream = Stream(server, agent.api_key)
        assert stream.status == 200
        assert not stream.ended.wait(REAUTHORISE_S * 3)  # a valid credential keeps it open
        started = time.monotonic()
        if how == "suspend_tenant":
            path = f"/v1/admin/tenants/{agent.owner.tenant_id}/suspend"
            assert client.post(path, headers=OPERATOR).status_code == 200
        else:
            path = f"/v1/keys/{_key_id(client, agent)}"
            assert client.delete(path, headers=agent.owner.headers).status_code == 200
        assert stream.ended.wait(REAUTHORISE_S + 5), "the stream stayed open"
        assert time.monotonic() - started < REAUTHORISE_S + 5
        assert stream.events[-1] == ("closed", '{"reason": "credential_no_longer_valid"}')
        # And it cannot be reopened.
        assert Stream(server, agent.api_key).status in (401, 403)
        stream.close()


def test_subscriptions_per_provider_are_limited_by_plan(limited: tuple[Server, Backend]) -> None:
    server, _ = limited
    quota = SUBSCRIPTIONS_PER_PROVIDER_MAX[Plan.EXPLORER]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        agent = provider(client, subscribe=False)
        body = {"provider_id": agent.provider_id, "categories": ["TECHNOLOGY"]}
        for _ in range(quota):
            made = client.post("/v1/subscriptions", json=body, headers=agent.headers)
            assert made.status_code == 201, made.text
        refused = client.post("/v1/subscriptions", json=body, headers=agent.headers)
        assert refused.status_code == 403
        assert refused.json()["errors"] == [
            {"field": "max_subscriptions", "reason": "max_subscriptions_exceeded"}
        ]
        listed = client.get("/v1/subscriptions", headers=agent.headers).json()["data"]
        assert len(listed) == quota  # nothing written
        plan = {"plan": "PROFESSIONAL"}
        path = f"/v1/admin/tenants/{agent.owner.tenant_id}/plan"
        assert client.put(path, json=plan, headers=OPERATOR).status_code == 200
        assert client.post("/v1/subscriptions", json=body, headers=agent.headers).status_code == 201


def test_work_reaches_exactly_the_matching_subscriptions_through_the_index(
    limited: tuple[Server, Backend],
) -> None:
    server, backend = limited
    with httpx.Client(base_url=server.url, timeout=30) as client:
        literal = provider(client, categories=("TECHNOLOGY",))
        prefixed = provider(client, categories=("TECH*",))
        everything = provider(client, categories=("*",))
        elsewhere = provider(client, categories=("FINANCE", "TECHNOLOGYX", "TECHNOLOGY.*"))
        capable = provider(client, subscribe=False)
        body = {
            "provider_id": capable.provider_id,
            "categories": ["TECHNOLOGY"],
            "capabilities": ["code*"],
        }
        assert client.post("/v1/subscriptions", json=body, headers=capable.headers).is_success
        dropped = provider(client, subscribe=False)
        body = {"provider_id": dropped.provider_id, "categories": ["TECHNOLOGY"]}
        made = client.post("/v1/subscriptions", json=body, headers=dropped.headers).json()
        path = f"/v1/subscriptions/{made['subscription_id']}"
        assert client.delete(path, headers=dropped.headers).status_code == 204
        acme = consumer(client, plan="BUSINESS")
        plain = submit_work(client, acme)
        coded = submit_work(client, acme, capability="code_review")
        other = submit_work(client, acme, capability="translation")
    with backend.market_db(server.data_dir) as db:
        rows = db.read("SELECT subject_id, payload FROM outbox WHERE type = 'work.submitted'")
    recipients = {r[0]: set(json.loads(r[1])["recipients"]) for r in rows}
    matched = {literal.provider_id, prefixed.provider_id, everything.provider_id}
    assert recipients[plain["work_id"]] == matched | {capable.provider_id}
    assert recipients[coded["work_id"]] == matched | {capable.provider_id}
    assert recipients[other["work_id"]] == matched
    assert elsewhere.provider_id not in set().union(*recipients.values())
    assert dropped.provider_id not in set().union(*recipients.values())


def test_the_migration_indexes_existing_subscriptions(store: Stores) -> None:
    # Subscriptions written before migration 5 (rows in `subscriptions`, none in the index)
    # are indexed by the migration's own INSERT ... SELECT.
    backfill = (
        SUBSCRIPTION_INDEX_SCHEMA if store.backend == "sqlite" else PG_SUBSCRIPTION_INDEX_SCHEMA
    )
    statement = backfill.split(";")[-1]
    rows = [
        ("sub_01", "prov_01", '["TECHNOLOGY"]', "[]"),
        ("sub_02", "prov_02", '["TE*", "LEGAL"]', "[]"),
        ("sub_03", "prov_03", '["*"]', '["code*"]'),
        ("sub_04", "prov_04", '["FINANCE"]', "[]"),
    ]

    def write(session: Any) -> None:
        session.connection.execute(
            "INSERT INTO tenants VALUES ('ten_01', 'T', 'PROVIDER', 'EXPLORER', 'ACTIVE', 1)"
        )
        for row in rows:
            session.connection.execute(
                "INSERT INTO providers (provider_id, tenant_id, name, type, capabilities,"
                " category, endpoint, secret_digest, created_at_ms, updated_at_ms)"
                " VALUES (?, 'ten_01', 'bot', 'AI_AGENT', '[]', 'T', NULL, ?, 1, 1)",
                (row[1], "d" * 64),
            )
            session.connection.execute(
                "INSERT INTO subscriptions VALUES (?, ?, 'ten_01', ?, ?, 1)", row
            )
        session.connection.execute(statement)

    store.market.run(write)
    with store.market.reader() as connection:
        everyone = ["prov_01", "prov_02", "prov_03"]
        assert subscribed_providers(connection, "TECHNOLOGY", None) == everyone
        assert subscribed_providers(connection, "TECHNOLOGY", "code_review") == everyone
        assert subscribed_providers(connection, "TECHNOLOGY", "translation") == everyone[:2]
        assert subscribed_providers(connection, "LEGAL", None) == ["prov_02", "prov_03"]
        assert subscribed_providers(connection, "HEALTH", None) == ["prov_03"]


def test_matching_searches_the_index_and_never_scans_subscriptions(store: Stores) -> None:
    parameters = ["TECHNOLOGY", *(["TECH"] * (limits.category_chars_max + 1))]
    with store.market.reader() as connection:
        if store.backend == "sqlite":
            plan = connection.execute("EXPLAIN QUERY PLAN " + _MATCHING_SELECT, parameters)
            steps = " | ".join(str(row[-1]) for row in plan.fetchall())
            assert "SCAN s" not in steps, steps
            assert "SCAN c" not in steps, steps
            assert "SEARCH c USING" in steps, steps
            return
        # PostgreSQL's planner scans tiny tables whatever their indexes; with sequential scans
        # priced out it takes an index path if, and only if, one serves the query.
        connection.execute("SET enable_seqscan = off")
        try:
            plan = connection.execute("EXPLAIN " + _MATCHING_SELECT, parameters).fetchall()
        finally:
            connection.execute("RESET enable_seqscan")
    steps = " | ".join(str(row[0]) for row in plan)
    assert "Seq Scan on subscriptions" not in steps, steps
    assert "Seq Scan on subscription_categories" not in steps, steps
    assert "Index Scan" in steps, steps
