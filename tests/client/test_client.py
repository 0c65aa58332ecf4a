"""The SDK (aex.client) against a real server on both backends: the spec's three workflows,
safe retries of writes, the notification stream with Last-Event-ID, problems as exceptions,
webhook signatures, offline certificate verification and an AP2 mandate with its receipts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import KeySet

from aex.client import (
    AsyncClient,
    Client,
    Notification,
    ProblemError,
    verify_certificate,
    verify_webhook,
)
from aex.client._sse import SseParser
from aex.core import webhook_signature
from aex.core.certs import (
    Authorization,
    CertificateType,
    Claim,
    LocalSigner,
    Verified,
    public_key_to_jwk,
    sign_request,
)
from aex.core.mandates import sign_mandate
from aex.core.reasons import Rejected
from tests.serve.server import OPERATOR_KEY, Server


class DropFirstResponse(httpx.HTTPTransport):
    """A real transport whose first answer is lost on the way back, after the server acted:
    the write happened, the client saw a dropped connection."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        response = super().handle_request(request)
        if len(self.sent) == 1:
            response.read()
            raise httpx.ReadError("connection dropped", request=request)
        return response


def consumer_client(server: Server, **kwargs: Any) -> tuple[Client, str]:
    with Client(server.url) as anonymous:
        signed_up = anonymous.sign_up("Acme Corp", "CONSUMER")
    with Client(server.url, api_key=OPERATOR_KEY) as operator:  # several tasks at once
        operator.set_plan(signed_up["tenant_id"], "BUSINESS")
    return Client(server.url, api_key=signed_up["api_key"], **kwargs), signed_up["tenant_id"]


def provider_client(server: Server) -> tuple[Client, Client, str]:
    with Client(server.url) as anonymous:
        owner_key = anonymous.sign_up("Agent Developer", "PROVIDER")["api_key"]
    owner = Client(server.url, api_key=owner_key)
    created = owner.register_provider(
        "CodeReviewBot", capabilities=["code_review"], category="TECHNOLOGY"
    )
    agent = Client(server.url, api_key=created["api_key"])
    agent.subscribe(created["provider_id"], ["TECHNOLOGY"])
    return owner, agent, created["provider_id"]


def test_the_three_workflows_run_on_the_sdk(server: Server) -> None:
    buyer, tenant_id = consumer_client(server)
    buyer.deposit(tenant_id, "10000")
    owner, agent, provider_id = provider_client(server)
    operator = Client(server.url, api_key=OPERATOR_KEY)
    # Workflow 1 and 2: work, a bid, the award, completion, settlement.
    work = buyer.submit_work(
        title="Review Go microservices codebase",
        category="TECHNOLOGY",
        budget_min="50",
        budget_max="200",
        requirements={"language": "Go", "scope": "security"},
        success_criteria=[{"metric": "coverage", "threshold": 0.8}],
        bid_window_seconds=5,
    )
    agent.submit_bid(
        work_id=work["work_id"],
        provider_id=provider_id,
        price="100",
        confidence=0.95,
        estimated_duration="2h",
        max_turnaround="4h",
    )
    operator.close_window(work["work_id"])
    awarded = buyer.work(work["work_id"])
    assert awarded["status"] == "AWARDED"
    settled = agent.complete(
        awarded["contract_id"], results={"report": "ok"}, metrics={"coverage": 0.9}
    )
    assert settled["status"] in {"SETTLED", "COMPLETED"}
    wallet = buyer.balance()  # the price stays in escrow through the dispute window
    assert (wallet["available"], wallet["held"]) == ("9900.00", "100.00")
    assert owner.reputation(provider_id)["contracts"] == 1
    # Workflow 3: a certificate, verified online and offline.
    signer = LocalSigner.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    request = sign_request(
        provider_id=provider_id,
        agent_name="CodeReviewBot",
        type=CertificateType.CAPABILITY,
        claims=[Claim("TECHNOLOGY", "code.review", "Go", Authorization.SELF_ASSERTED)],
        signer=signer,
    )
    issued = agent.request_certificate(request)
    online = buyer.verify_certificate_online(issued["certificate_id"])
    assert online["valid"] is True
    certificate = buyer.certificate(issued["certificate_id"])
    offline = verify_certificate(certificate, buyer.ca_document(), crl=buyer.crl())
    assert isinstance(offline, Verified)
    for client in (buyer, owner, agent, operator):
        client.close()


def test_a_write_whose_answer_was_lost_is_retried_and_applied_once(server: Server) -> None:
    transport = DropFirstResponse()
    buyer, tenant_id = consumer_client(server, transport=transport)
    with buyer:
        answer = buyer.deposit(tenant_id, "25.50")
        assert len(transport.sent) == 2
        keys = {request.headers["idempotency-key"] for request in transport.sent}
        assert len(keys) == 1  # the retry carried the first attempt's key
        assert answer["amount"] == "25.50"
        assert buyer.balance()["available"] == "25.50"  # once, not twice


def test_a_refusal_raises_a_problem_naming_the_field(server: Server) -> None:
    buyer, tenant_id = consumer_client(server)
    with buyer, pytest.raises(ProblemError) as refused:
        buyer.deposit(tenant_id, "0.001")
    assert refused.value.status == 422
    assert [error["field"] for error in refused.value.errors] == ["amount"]


def test_amounts_are_never_floats(server: Server) -> None:
    buyer, tenant_id = consumer_client(server)
    with buyer, pytest.raises(TypeError):
        buyer.deposit(tenant_id, 10.5)  # type: ignore[arg-type]


def test_the_notification_stream_resumes_after_its_last_event(server: Server) -> None:
    buyer, tenant_id = consumer_client(server)
    buyer.deposit(tenant_id, "1000")
    _, agent, _ = provider_client(server)

    def post(title: str) -> str:
        work = buyer.submit_work(
            title=title, category="TECHNOLOGY", budget_min="50", budget_max="100"
        )
        return str(work["work_id"])

    def next_work(stream: Iterator[Notification]) -> Notification:
        while True:
            notification = next(stream)
            if notification.event == "work.submitted":
                return notification

    stream = agent.notifications()
    assert next(stream).event == "ready"
    first_id = post("first")
    first = next_work(stream)
    assert first.json()["payload"]["work_id"] == first_id
    stream.close()  # the provider goes away ...
    missed_id = post("missed while away")
    resumed = agent.notifications(last_event_id=first.id)  # ... and comes back
    missed = next_work(resumed)
    assert missed.json()["payload"]["work_id"] == missed_id
    live_id = post("live")
    live = next_work(resumed)
    assert live.json()["payload"]["work_id"] == live_id
    resumed.close()
    ids = [int(str(notification.id)) for notification in (first, missed, live)]
    assert ids == sorted(set(ids))  # nothing repeated, nothing missed, in order


def test_the_async_client_runs_the_same_routes(server: Server) -> None:
    async def run() -> dict[str, Any]:
        async with AsyncClient(server.url) as anonymous:
            signed_up = await anonymous.sign_up("Async Corp", "CONSUMER")
        async with AsyncClient(server.url, api_key=signed_up["api_key"]) as buyer:
            await buyer.deposit(signed_up["tenant_id"], "12.34")
            balance: dict[str, Any] = await buyer.balance()
            return balance

    assert asyncio.run(run())["available"] == "12.34"


def test_each_follows_the_cursor_through_every_list(server: Server) -> None:
    buyer, _ = consumer_client(server)
    with buyer:
        minted = {buyer.create_key()["key_id"] for _ in range(3)}
        first = buyer.list_keys(limit=2)
        assert (len(first["data"]), first["has_more"]) == (2, True)
        every = [k["key_id"] for k in buyer.each(buyer.list_keys, limit=2)]
        assert len(every) == 4
        assert minted < set(every)
    owner, agent, provider_id = provider_client(server)
    with owner, agent:
        assert [p["provider_id"] for p in agent.each(agent.list_providers)] == [provider_id]
        assert len(list(owner.each(owner.list_subscriptions, limit=1))) == 1

    async def run() -> list[str]:
        async with AsyncClient(server.url, api_key=OPERATOR_KEY) as operator:
            return [t["tenant_id"] async for t in operator.each(operator.list_tenants, limit=3)]

    tenants = asyncio.run(run())
    assert len(tenants) == len(set(tenants)) >= 2


def test_each_walks_every_list_page_by_page_with_its_filters(server: Server) -> None:
    buyer, tenant_id = consumer_client(server)
    buyer.deposit(tenant_id, "1000")
    owner, agent, provider_id = provider_client(server)
    budget = {"budget_min": "1", "budget_max": "10", "bid_window_seconds": 300}
    ids = [
        buyer.submit_work(title=f"Task {n}", category="TECHNOLOGY", **budget)["work_id"]
        for n in range(3)
    ]
    first_page = buyer.list_work(limit=2)
    assert (len(first_page["data"]), first_page["has_more"]) == (2, True)
    walked = [w["work_id"] for w in buyer.each(buyer.list_work, limit=1)]
    assert sorted(walked) == sorted(ids)  # every work once, one page at a time
    assert [w["work_id"] for w in buyer.each(buyer.list_work, status="AWARDED")] == []
    for work_id in ids:
        agent.submit_bid(
            work_id=work_id,
            provider_id=provider_id,
            price="5",
            confidence=0.9,
            estimated_duration="1h",
            max_turnaround="2h",
        )
    assert sorted(b["work_id"] for b in agent.each(agent.own_bids, limit=2)) == sorted(ids)
    assert len(list(buyer.each(buyer.bids, ids[0], limit=1))) == 1
    open_work = {w["work_id"] for w in agent.each(agent.open_work, limit=2)}
    assert set(ids) <= open_work
    mine = {w["work_id"] for w in owner.each(owner.open_work, provider_id=provider_id)}
    assert set(ids) <= mine
    assert len(list(buyer.each(buyer.transactions, limit=1))) == 4  # a deposit, three holds

    async def walk_async() -> list[Any]:
        async with AsyncClient(server.url) as anonymous:
            signed_up = await anonymous.sign_up("Async Corp", "CONSUMER")
        async with AsyncClient(server.url, api_key=signed_up["api_key"]) as payer:
            for amount in ("1", "2", "3"):
                await payer.deposit(signed_up["tenant_id"], amount)
            return [t async for t in payer.each(payer.transactions, limit=2)]

    walked_async = asyncio.run(walk_async())
    assert [t["available_change"] for t in walked_async] == ["3.00", "2.00", "1.00"]
    for client in (buyer, owner, agent):
        client.close()


def test_a_webhook_signature_verifies_and_a_tampered_body_does_not() -> None:
    secret, body, now_s = "aex_whsec_" + "ab" * 32, b'{"type":"bid.won"}', 1_800_000_000
    headers = {
        "X-AEX-Timestamp": str(now_s),
        "X-AEX-Signature": webhook_signature(secret, now_s, body),
    }
    assert verify_webhook(secret, headers, body, now_s=now_s + 10)
    assert not verify_webhook(secret, headers, body + b" ", now_s=now_s)
    assert not verify_webhook("aex_whsec_other", headers, body, now_s=now_s)
    assert not verify_webhook(secret, headers, body, now_s=now_s + 301)  # a replay


def test_offline_verification_refuses_a_certificate_from_another_ca(server: Server) -> None:
    with Client(server.url) as anonymous:
        ca = anonymous.ca_document()
    refused = verify_certificate({"id": "cert_x"}, ca, at=datetime.now(UTC))
    assert isinstance(refused, Rejected)


def test_the_sse_parser_follows_the_event_stream_rules() -> None:
    parser = SseParser()
    lines = [": comment", "id: 7", "event: work.submitted", 'data: {"a":', "data: 1}", ""]
    out = [notification for line in lines for notification in parser.feed_line(line)]
    assert out == [Notification("7", "work.submitted", '{"a":\n1}')]
    assert out[0].json() == {"a": 1}
    assert parser.feed_line("") == []  # a blank line with no data dispatches nothing


def test_an_ap2_mandate_runs_on_the_sdk(server: Server) -> None:
    # docs/payments.md "AP2 mandates", step by step.
    buyer, tenant_id = consumer_client(server)
    buyer.deposit(tenant_id, "1000")
    _, agent, provider_id = provider_client(server)
    operator = Client(server.url, api_key=OPERATOR_KEY)
    user_key = LocalSigner.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    buyer.register_mandate_key(public_key_to_jwk(user_key.public_key))
    now_s = int(time.time())
    token = sign_mandate(
        mandate_id="mdt_sdk_" + tenant_id[-8:],
        tenant_id=tenant_id,
        currency="USD",
        amount_per_work="150.00",
        amount_total="300.00",
        categories=["TECHNOLOGY"],
        issued_at_s=now_s,
        expires_at_s=now_s + 7 * 86_400,
        signer=user_key,
        description="Code reviews: at most $150 each, $300 in all, for a week",
    )
    mandate = buyer.create_mandate(token)
    assert mandate["state"] == "ACTIVE"
    work = dict(
        title="Review Go microservices codebase",
        category="TECHNOLOGY",
        budget_min="50",
        budget_max="200",
        bid_window_seconds=5,
    )
    with pytest.raises(ProblemError) as refused:
        buyer.submit_work(**work, mandate_id=mandate["mandate_id"])
    assert refused.value.slug == "mandate-amount-per-work-exceeded"
    posted = buyer.submit_work(**{**work, "budget_max": "150"}, mandate_id=mandate["mandate_id"])
    agent.submit_bid(
        work_id=posted["work_id"],
        provider_id=provider_id,
        price="120",
        confidence=0.95,
        estimated_duration="2h",
        max_turnaround="4h",
    )
    operator.close_window(posted["work_id"])
    contract_id = buyer.work(posted["work_id"])["contract_id"]
    agent.complete(contract_id, results={"report": "ok"}, metrics={"coverage": 0.9})
    receipts = buyer.receipts(contract_id)["receipts"]
    keys = KeySet.import_key_set(buyer.ca_document()["jwks"])
    kinds = [jwt.decode(r["token"], keys, algorithms=["ES256"]).claims for r in receipts]
    assert sorted(c["receipt_type"] for c in kinds) == ["checkout", "payment"]
    assert buyer.mandate(mandate["mandate_id"])["spent"] == "120.00"
    assert buyer.revoke_mandate(mandate["mandate_id"])["state"] == "REVOKED"
    for client in (buyer, agent, operator):
        client.close()
