"""Invariant: a refused request answers a 4xx problem+json naming the field, and writes nothing.

The table below is the bad-input suite of issue 11 (items 3, 4 and 13): each row is sent to a
real server of its own (per backend: SQLite, and PostgreSQL + Redis), and the whole database is
compared before and after it: on SQLite a byte-level dump (`iterdump`) plus the shared epoch
map, on PostgreSQL every table's row count and content digest (the credentials epoch is a
table). A refusal that bumps the credentials epoch, meters a call, stores a progress report or
opens a hold fails here. docs/security-notes/sec-input.md lists what each row holds.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from aex.core import limits
from aex.core.certs import Authorization, CertificateType, Claim, LocalSigner, sign_request
from tests.serve.conftest import Tenant, sign_up
from tests.serve.market_helpers import OPERATOR, Provider, bid, close_now, consumer, provider
from tests.serve.market_helpers import submit_work as submit
from tests.serve.server import BACKENDS, TEST_DATABASE_URL, Backend, Server

PROBLEM = "application/problem+json"
DEEP = 1_500  # past msgspec's ~1,000-level recursion limit: a RecursionError (500) on main
SHALLOW_DEEP = limits.request_json_depth_max + 8  # under the recursion limit, over ours


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# -- the database, compared -------------------------------------------------------------------


def snapshot(backend: Backend, data_dir: Path) -> dict[str, Any]:
    """Everything the exchange has written: compared before and after each refusal."""
    if backend.name == "sqlite":
        path = data_dir / "aex.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            dump = list(connection.iterdump())
        connection.close()
        epoch_map = (data_dir / "aex.sqlite3.epoch").read_bytes()
        return {"dump": dump, "epoch_map": epoch_map}
    import psycopg

    found: dict[str, Any] = {}
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
            " AND table_type = 'BASE TABLE' ORDER BY table_name",
            (backend.schema,),
        ).fetchall()
        for (table,) in tables:
            query = (
                f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text),"
                f" '')) FROM {backend.schema}.{table} t"
            )
            found[table] = connection.execute(query.encode()).fetchone()
    assert "credentials_epoch" in found
    assert "verification_calls" in found
    return found


def settled_snapshot(backend: Backend, data_dir: Path) -> dict[str, Any]:
    # Two equal reads 100 ms apart: no background write (setup's events, a closer) in flight.
    deadline = time.monotonic() + 10
    previous = snapshot(backend, data_dir)
    while True:
        time.sleep(0.1)
        current = snapshot(backend, data_dir)
        if current == previous:
            return current
        assert time.monotonic() < deadline, "the database never settled"
        previous = current


def changed_parts(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    if "dump" in before:
        gone = set(before["dump"]) - set(after["dump"])
        new = set(after["dump"]) - set(before["dump"])
        epoch = [] if before["epoch_map"] == after["epoch_map"] else ["epoch map"]
        return sorted(gone | new)[:10] + epoch
    return [
        table for table in sorted(set(before) | set(after)) if before.get(table) != after.get(table)
    ]


# -- one exchange of its own per backend, with every actor the table needs ---------------------


@dataclass
class World:
    backend: Backend
    server: Server
    client: httpx.Client
    acme: Tenant
    other: Tenant
    bot: Provider
    ids: dict[str, str] = field(default_factory=dict)

    def headers(self, actor: str) -> dict[str, str]:
        return {
            "anonymous": {},
            "acme": self.acme.headers,
            "other": self.other.headers,
            "bot": self.bot.headers,
            "owner": self.bot.owner.headers,
            "operator": OPERATOR,
        }[actor]


def signed(agent: Provider, authorization: Authorization, agent_name: str) -> dict[str, Any]:
    key = LocalSigner.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    claim = Claim("TECHNOLOGY", "code.review", "Go, Python", authorization)
    return sign_request(
        provider_id=agent.provider_id,
        agent_name=agent_name,
        type=CertificateType.CAPABILITY,
        claims=[claim],
        signer=key,
    )


def _contract(client: httpx.Client, acme: Tenant, bot: Provider) -> str:
    work = submit(client, acme, bid_window_seconds=300)
    assert bid(client, bot, work["work_id"]).status_code == 201
    contract_id: str = close_now(client, work["work_id"])["contract_id"]
    return contract_id


def _setup(client: httpx.Client) -> dict[str, Any]:
    acme, other = consumer(client, plan="BUSINESS"), consumer(client, plan="BUSINESS")
    bot = provider(client, plan="PROFESSIONAL")  # two certificates: one pending, one issued
    executing = _contract(client, acme, bot)
    reported = client.post(
        f"/v1/contracts/{executing}/progress", json={"percent": 10}, headers=bot.headers
    )
    assert reported.status_code == 200, reported.text
    disputed = _contract(client, acme, bot)
    done = client.post(
        f"/v1/contracts/{disputed}/complete",
        json={"results": {"report": "ok"}, "metrics": {"coverage": 0.91}},
        headers=bot.headers,
    )
    assert done.json()["status"] == "SETTLED", done.text
    raised = client.post(
        f"/v1/contracts/{disputed}/dispute", json={"reason": "late"}, headers=acme.headers
    )
    assert raised.json()["status"] == "DISPUTED", raised.text
    settled = _contract(client, acme, bot)
    done = client.post(
        f"/v1/contracts/{settled}/complete",
        json={"results": {"report": "ok"}, "metrics": {"coverage": 0.91}},
        headers=bot.headers,
    )
    assert done.json()["status"] == "SETTLED", done.text
    pending = client.post(
        "/v1/certificates/request",
        json=signed(bot, Authorization.TRANSACTION_EVIDENCE, "CodeReviewBot"),
        headers=bot.headers,
    )
    issued = client.post(
        "/v1/certificates/request",
        json=signed(bot, Authorization.SELF_ASSERTED, "CodeReviewBot"),
        headers=bot.headers,
    )
    assert (pending.json()["state"], issued.json()["state"]) == ("REQUESTED", "ISSUED")
    open_work = submit(client, acme, bid_window_seconds=300)
    ids = {
        "executing": executing,
        "disputed": disputed,
        "settled": settled,
        "pending_cert": pending.json()["certificate_id"],
        "issued_cert": issued.json()["certificate_id"],
        "open_work": open_work["work_id"],
        "provider_id": bot.provider_id,
        "other_key_id": other.key_id,
        "tenant_id": acme.tenant_id,
    }
    return {"acme": acme, "other": other, "bot": bot, "ids": ids}


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    backend = Backend(request.param)
    data_dir = tmp_path_factory.mktemp(f"bad-input-{backend.name}") / "data"
    server = Server(data_dir, env=backend.env).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            made = _setup(client)
            yield World(
                backend, server, client, made["acme"], made["other"], made["bot"], made["ids"]
            )
    finally:
        server.stop()
        backend.cleanup()


# -- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    name: str
    method: str
    path: str  # {ids} filled from World.ids
    actor: str
    body: Any = None  # JSON value, or bytes sent as they are
    status: int = 422
    field: str | None = None  # errors[0].field
    slug: str | None = None  # the problem type's last segment


def _work(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Review Go microservices codebase",
        "category": "TECHNOLOGY",
        "budget": {"min": 50, "max": 200, "currency": "USD"},
        "bid_window_seconds": 300,
    }
    return body | changes


def _raw_work(requirements: str) -> bytes:
    return json.dumps(_work()).encode()[:-1] + b', "requirements": ' + requirements.encode() + b"}"


def _raw_bid(sample_work: str) -> str:
    return (
        '{"work_id": "{open_work}", "provider_id": "{provider_id}", "price": 100,'
        ' "confidence": 0.9, "estimated_duration": "2h", "sla": {"max_turnaround": "4h"},'
        ' "sample_work": ' + sample_work + "}"
    )


UNKNOWN_KEY, UNKNOWN_TENANT = "key_0123456789abcdef", "ten_0123456789abcdef"
REFUSALS = [
    # Identity and registry (typed bodies: strict, names checked).
    Refusal(
        "sign-up nested 1,500 deep (anonymous)",
        "POST",
        "/v1/tenants",
        "anonymous",
        ('{"name": ' + nested(DEEP) + ', "type": "BOTH"}').encode(),
        422,
        "name",
    ),
    Refusal(
        "sign-up with an unknown member nested deep",
        "POST",
        "/v1/tenants",
        "anonymous",
        ('{"extra": ' + nested(DEEP) + ', "name": "A", "type": "BOTH"}').encode(),
        422,
        "extra",
    ),
    Refusal(
        "tenant name with NUL",
        "POST",
        "/v1/tenants",
        "anonymous",
        {"name": "Acme\u0000Corp", "type": "BOTH"},
        422,
        "name",
        "text-control-character",
    ),
    Refusal(
        "tenant name with RLO (U+202E)",
        "POST",
        "/v1/tenants",
        "anonymous",
        {"name": "Acme\u202egnp.exe", "type": "BOTH"},
        422,
        "name",
        "text-bidi-control",
    ),
    Refusal(
        "tenant name with RLI (U+2067)",
        "POST",
        "/v1/tenants",
        "anonymous",
        {"name": "\u2067Acme", "type": "BOTH"},
        422,
        "name",
        "text-bidi-control",
    ),
    Refusal(
        "provider name with NUL",
        "POST",
        "/v1/providers",
        "owner",
        {
            "name": "Bot\u0000",
            "type": "AI_AGENT",
            "capabilities": ["code_review"],
            "category": "TECHNOLOGY",
        },
        422,
        "name",
        "text-control-character",
    ),
    Refusal(
        "provider rename with LRO (U+202D)",
        "PATCH",
        "/v1/providers/{provider_id}",
        "owner",
        {"name": "\u202dBot"},
        422,
        "name",
        "text-bidi-control",
    ),
    Refusal(
        "token ttl_s as a numeric string (no coercion)",
        "POST",
        "/v1/tokens",
        "acme",
        {"ttl_s": "3600"},
        422,
        "ttl_s",
    ),
    Refusal(
        "token ttl_s as an integral float (no coercion)",
        "POST",
        "/v1/tokens",
        "acme",
        b'{"ttl_s": 3600.0}',
        422,
        "ttl_s",
    ),
    Refusal(
        "deposit of 1e999",
        "POST",
        "/v1/deposits",
        "acme",
        b'{"tenant_id": "{tenant_id}", "amount": 1e999, "currency": "USD"}',
        422,
        "amount",
    ),
    Refusal(
        "withdrawal beyond the balance",
        "POST",
        "/v1/withdrawals",
        "acme",
        {"tenant_id": "{tenant_id}", "amount": "99999999", "currency": "USD"},
        422,
        "amount",
    ),
    # Credentials: a refused revocation must not move the epoch (every worker's key cache).
    Refusal("revoke an unknown key", "DELETE", f"/v1/keys/{UNKNOWN_KEY}", "acme", None, 404),
    Refusal("revoke another tenant's key", "DELETE", "/v1/keys/{other_key_id}", "acme", None, 404),
    Refusal("rotate an unknown key", "POST", f"/v1/keys/{UNKNOWN_KEY}/rotate", "acme", None, 404),
    Refusal(
        "suspend an unknown tenant",
        "POST",
        f"/v1/admin/tenants/{UNKNOWN_TENANT}/suspend",
        "operator",
        None,
        404,
    ),
    Refusal(
        "plan of an unknown tenant",
        "PUT",
        f"/v1/admin/tenants/{UNKNOWN_TENANT}/plan",
        "operator",
        {"plan": "BUSINESS"},
        404,
    ),
    # Work and bids (free-form bodies: Decimal numbers, bounded nesting).
    Refusal(
        "work requirements with 1e999",
        "POST",
        "/v1/work",
        "acme",
        _raw_work('{"coverage": 1e999}'),
        422,
        "requirements",
    ),
    Refusal(
        "work requirements nested 1,500 deep",
        "POST",
        "/v1/work",
        "acme",
        _raw_work('{"a": ' + nested(DEEP) + "}"),
        422,
        "requirements",
        "body-too-deep",
    ),
    Refusal(
        f"work requirements nested {SHALLOW_DEEP} deep",
        "POST",
        "/v1/work",
        "acme",
        _raw_work(nested(SHALLOW_DEEP)),
        422,
        "requirements",
        "body-too-deep",
    ),
    Refusal(
        "work title with RLO",
        "POST",
        "/v1/work",
        "acme",
        _work(title="Review \u202etxt.exe"),
        422,
        "title",
    ),
    Refusal(
        "work title with NUL", "POST", "/v1/work", "acme", _work(title="Re\u0000view"), 422, "title"
    ),
    Refusal(
        "work beyond the consumer's funds (no hold)",
        "POST",
        "/v1/work",
        "acme",
        _work(budget={"min": 1, "max": 9999999, "currency": "USD"}),
        422,
    ),
    Refusal(
        "bid sample_work with 1e999",
        "POST",
        "/v1/bids",
        "bot",
        _raw_bid('{"x": 1e999}').encode(),
        422,
        "sample_work",
    ),
    Refusal(
        "bid nested 1,500 deep",
        "POST",
        "/v1/bids",
        "bot",
        _raw_bid(nested(DEEP)).encode(),
        422,
        "sample_work",
        "body-too-deep",
    ),
    # Lists: a bad filter or a cursor that is not the caller's row reads, and writes, nothing.
    Refusal("work list, unknown state", "GET", "/v1/work?status=DONE", "acme", None, 422, "status"),
    Refusal(
        "work list, another tenant's work as cursor",
        "GET",
        "/v1/work?starting_after={open_work}",
        "other",
        None,
        422,
        "starting_after",
    ),
    Refusal(
        "bids list, a work id as cursor",
        "GET",
        "/v1/work/{open_work}/bids?starting_after={open_work}",
        "acme",
        None,
        422,
        "starting_after",
    ),
    Refusal(
        "open work for another tenant's provider",
        "GET",
        "/v1/work/open?provider_id={provider_id}",
        "other",
        None,
        403,
        "provider_id",
    ),
    Refusal(
        "transactions, an unknown entry as cursor",
        "GET",
        "/v1/transactions?starting_after=999999999",
        "acme",
        None,
        422,
        "starting_after",
    ),
    Refusal(
        "deliveries, an unknown event as cursor",
        "GET",
        "/v1/notifications/deliveries?starting_after=evt_nope",
        "bot",
        None,
        422,
        "starting_after",
    ),
    # Contracts: progress is validated before it is stored; resolve is exact.
    Refusal(
        "progress with 1e999",
        "POST",
        "/v1/contracts/{executing}/progress",
        "bot",
        b'{"percent": 1e999}',
        422,
        "percent",
        "progress-value-invalid",
    ),
    Refusal(
        "progress as an array",
        "POST",
        "/v1/contracts/{executing}/progress",
        "bot",
        [50],
        422,
        "body",
        "progress-body-type-invalid",
    ),
    Refusal(
        "progress nested 1,500 deep",
        "POST",
        "/v1/contracts/{executing}/progress",
        "bot",
        ('{"steps": ' + nested(DEEP) + "}").encode(),
        422,
        "steps",
        "body-too-deep",
    ),
    Refusal(
        "progress over 16 KiB",
        "POST",
        "/v1/contracts/{executing}/progress",
        "bot",
        {"log": "x" * (limits.progress_bytes_max + 1)},
        413,
        "body",
        "progress-too-large",
    ),
    Refusal(
        "completion results with 1e999",
        "POST",
        "/v1/contracts/{executing}/complete",
        "bot",
        b'{"results": {"score": 1e999}, "metrics": {"coverage": 0.9}}',
        422,
        "results",
    ),
    Refusal(
        "resolve with a list",
        "POST",
        "/v1/admin/contracts/{disputed}/resolve",
        "operator",
        {"resolution": []},
        422,
        "resolution",
        "resolution-invalid",
    ),
    Refusal(
        "resolve with an unknown field",
        "POST",
        "/v1/admin/contracts/{disputed}/resolve",
        "operator",
        {"resolution": "refund", "amount": "1"},
        422,
        "amount",
        "resolution-field-unknown",
    ),
    Refusal(
        "resolve without a resolution",
        "POST",
        "/v1/admin/contracts/{disputed}/resolve",
        "operator",
        {},
        422,
        "resolution",
    ),
    Refusal(
        "resolve with a number",
        "POST",
        "/v1/admin/contracts/{disputed}/resolve",
        "operator",
        {"resolution": 1},
        422,
        "resolution",
    ),
    Refusal(
        "dispute reason with NUL (PostgreSQL text cannot hold it)",
        "POST",
        "/v1/contracts/{settled}/dispute",
        "acme",
        {"reason": "wrong\u0000repo"},
        422,
        "reason",
        "text-control-character",
    ),
    Refusal(
        "dispute reason with RLO",
        "POST",
        "/v1/contracts/{settled}/dispute",
        "acme",
        {"reason": "wrong \u202eoper"},
        422,
        "reason",
        "text-bidi-control",
    ),
    Refusal(
        "dispute reason as a number (no coercion)",
        "POST",
        "/v1/contracts/{settled}/dispute",
        "acme",
        {"reason": 42},
        422,
        "reason",
        "dispute-reason-invalid",
    ),
    Refusal(
        "dispute reason over 2,000 characters (was silently cut)",
        "POST",
        "/v1/contracts/{settled}/dispute",
        "acme",
        {"reason": "x" * (limits.dispute_reason_chars_max + 1)},
        422,
        "reason",
        "dispute-reason-invalid",
    ),
    Refusal(
        "dispute with an unknown field",
        "POST",
        "/v1/contracts/{settled}/dispute",
        "acme",
        {"reason": "late", "refund_to": "ten_x"},
        422,
        "refund_to",
        "dispute-field-unknown",
    ),
    # Certificates.
    Refusal(
        "approve with a 257-character note",
        "POST",
        "/v1/admin/certificates/{pending_cert}/approve",
        "operator",
        {"note": "x" * (limits.cert_scope_chars_max + 1)},
        422,
        "note",
    ),
    Refusal(
        "reject with a 257-character note",
        "POST",
        "/v1/admin/certificates/{pending_cert}/reject",
        "operator",
        {"note": "x" * (limits.cert_scope_chars_max + 1)},
        422,
        "note",
    ),
    Refusal(
        "approve with a numeric note (no coercion)",
        "POST",
        "/v1/admin/certificates/{pending_cert}/approve",
        "operator",
        {"note": 5},
        422,
        "note",
    ),
    Refusal(
        "approve with a bidi note",
        "POST",
        "/v1/admin/certificates/{pending_cert}/approve",
        "operator",
        {"note": "ok\u2066"},
        422,
        "note",
        "text-bidi-control",
    ),
    Refusal(
        "revoke with a boolean reason",
        "POST",
        "/v1/certificates/{issued_cert}/revoke",
        "owner",
        {"reason": True},
        422,
        "reason",
    ),
    Refusal(
        "certificate record without a credential",
        "GET",
        "/v1/certificates/{issued_cert}/record",
        "anonymous",
        None,
        401,
    ),
    Refusal(
        "certificate record of another tenant's provider",
        "GET",
        "/v1/certificates/{issued_cert}/record",
        "other",
        None,
        404,
    ),
    Refusal(
        "verify an unknown certificate id (not billed)",
        "POST",
        "/v1/certificates/verify",
        "acme",
        {"certificate_id": "cert_0123456789abcdef"},
        404,
    ),
    Refusal("verify an array (not billed)", "POST", "/v1/certificates/verify", "acme", [1], 422),
    Refusal(
        "verify nested 1,500 deep (not billed)",
        "POST",
        "/v1/certificates/verify",
        "acme",
        ('{"certificate": ' + nested(DEEP) + "}").encode(),
        422,
        "certificate",
        "body-too-deep",
    ),
    Refusal("a wrong method", "PUT", "/v1/keys", "acme", None, 405, None, "method-not-allowed"),
]


def _send(world: World, refusal: Refusal, **extra_headers: str) -> httpx.Response:
    path = refusal.path.format(**world.ids)
    headers = {**world.headers(refusal.actor), **extra_headers}
    if isinstance(refusal.body, bytes):
        content = refusal.body
        for name, value in world.ids.items():
            content = content.replace(b"{" + name.encode() + b"}", value.encode())
    elif refusal.body is None:
        content = b""
    else:
        text = json.dumps(refusal.body)
        for name, value in world.ids.items():
            text = text.replace("{" + name + "}", value)
        content = text.encode()
    if content:
        headers["content-type"] = "application/json"
    return world.client.request(refusal.method, path, content=content, headers=headers)


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r.name for r in REFUSALS])
def test_a_refused_request_is_a_4xx_problem_naming_the_field_and_writes_nothing(
    world: World, refusal: Refusal
) -> None:
    before = settled_snapshot(world.backend, world.server.data_dir)
    response = _send(world, refusal)
    after = snapshot(world.backend, world.server.data_dir)
    assert response.status_code == refusal.status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == refusal.status
    if refusal.field is not None:
        assert problem["errors"][0]["field"] == refusal.field, problem
    if refusal.slug is not None:
        assert problem["type"].rsplit("/", 1)[1] == refusal.slug, problem
    assert changed_parts(before, after) == [], refusal.name


def test_the_snapshot_sees_a_revocation_and_a_metered_call(world: World) -> None:
    # The comparison can fail: the same routes, accepted, do write (epoch, metering).
    before = settled_snapshot(world.backend, world.server.data_dir)
    created = world.client.post("/v1/keys", headers=world.other.headers)
    assert created.status_code == 201
    revoked = world.client.delete(
        f"/v1/keys/{created.json()['key_id']}", headers=world.other.headers
    )
    assert revoked.status_code == 200
    verified = world.client.post(
        "/v1/certificates/verify",
        json={"certificate_id": world.ids["issued_cert"]},
        headers=world.other.headers,
    )
    assert verified.status_code == 200
    changed = changed_parts(before, snapshot(world.backend, world.server.data_dir))
    if world.backend.name == "postgres":
        assert {"api_keys", "credentials_epoch", "verification_calls"} <= set(changed)
    else:
        assert "epoch map" in changed
        assert any("verification_calls" in line for line in changed)


def test_the_owner_reads_a_certificate_record_with_its_key(world: World) -> None:
    # On main: 500 (the route asserted a principal the gateway never set on this public path).
    path = f"/v1/certificates/{world.ids['issued_cert']}/record"
    for headers in (world.bot.headers, world.bot.owner.headers, OPERATOR):
        response = world.client.get(path, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "ISSUED"


def test_refused_verifications_are_not_billed(world: World) -> None:
    verifier = sign_up(world.client, "Verifier", "CONSUMER")
    for body in ({"certificate_id": "cert_0123456789abcdef"}, [1], {"certificate_id": 7}):
        refused = world.client.post("/v1/certificates/verify", json=body, headers=verifier.headers)
        assert 400 <= refused.status_code < 500
    usage = world.client.get("/v1/certificates/usage", headers=verifier.headers).json()
    assert usage["verification_calls"] == 0
    answered = world.client.post(
        "/v1/certificates/verify",
        json={"certificate_id": world.ids["issued_cert"]},
        headers=verifier.headers,
    )
    assert answered.json()["metering"]["calls"] == 1


def test_a_405_names_the_allowed_methods(world: World) -> None:
    response = world.client.put("/v1/keys", headers=world.acme.headers)
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_progress_is_stored_as_validated(world: World) -> None:
    path = f"/v1/contracts/{world.ids['executing']}/progress"
    reported = world.client.post(
        path, json={"percent": 50, "note": "half"}, headers=world.bot.headers
    )
    assert reported.status_code == 200, reported.text
    assert reported.json()["progress"] == {"percent": 50, "note": "half"}


def test_an_agent_name_with_a_bidi_control_is_refused(world: World) -> None:
    before = settled_snapshot(world.backend, world.server.data_dir)
    document = signed(world.bot, Authorization.SELF_ASSERTED, "Code\u202eBot")
    response = world.client.post(
        "/v1/certificates/request", json=document, headers=world.bot.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "agent_name"
    assert changed_parts(before, snapshot(world.backend, world.server.data_dir)) == []


def test_every_refusal_logs_exactly_one_line_and_no_traceback(world: World) -> None:
    # On main, the 500s among these logged a full traceback each (RecursionError, TypeError,
    # AssertionError); a refusal is the access log's one JSON line, nothing else.
    time.sleep(0.3)  # the access log writes in batches at most 50 ms late
    log = world.server.log_path
    start = log.stat().st_size
    request_ids = [f"bad-input-{index}-{time.time_ns()}" for index in range(len(REFUSALS))]
    for refusal, request_id in zip(REFUSALS, request_ids, strict=True):
        response = _send(world, refusal, **{"X-Request-ID": request_id})
        assert response.status_code == refusal.status, (refusal.name, response.text)
    time.sleep(0.5)
    written = log.read_bytes()[start:].decode()
    assert "Traceback" not in written
    lines = written.splitlines()
    assert len(lines) == len(REFUSALS), written[-2000:]
    for line, request_id, refusal in zip(lines, request_ids, REFUSALS, strict=True):
        access = json.loads(line)
        assert access["request_id"] == request_id
        assert access["status"] == refusal.status
