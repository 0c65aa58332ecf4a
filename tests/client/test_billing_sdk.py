"""The SDK's billing methods (plan, usage, invoices, revenue) and its certificate-trust methods
(IDENTITY challenges, delegation keys and delegations, status lists) against a real server on
both backends."""

from __future__ import annotations

import socket
import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from aex.client import Client, ProblemError
from aex.core.certs import LocalSigner, public_key_to_jwk
from aex.core.delegation import sign_delegation
from tests.serve.server import OPERATOR_KEY, Server


def _key() -> LocalSigner:
    return LocalSigner.from_private_key(ec.generate_private_key(ec.SECP256R1()))


def _tenant(server: Server, kind: str = "CONSUMER") -> tuple[Client, str]:
    with Client(server.url) as anonymous:
        signed_up = anonymous.sign_up("Acme Corp", kind)
    return Client(server.url, api_key=signed_up["api_key"]), signed_up["tenant_id"]


def _agent(server: Server, url: str) -> tuple[Client, str]:
    owner, _ = _tenant(server, "PROVIDER")
    created = owner.register_provider("Bot", capabilities=["code.review"], category="TECHNOLOGY")
    agent = Client(server.url, api_key=created["api_key"])
    card = {"name": "Bot", "url": url, "version": "1.0.0", "skills": [{"id": "s", "name": "S"}]}
    agent.register_agent_card(created["provider_id"], card)
    return agent, created["provider_id"]


def test_the_sdk_buys_a_plan_and_reads_usage_invoices_and_revenue(server: Server) -> None:
    buyer, tenant_id = _tenant(server)
    operator = Client(server.url, api_key=OPERATOR_KEY)
    with pytest.raises(ProblemError) as refused:  # no cash yet
        buyer.change_plan("PROFESSIONAL", agents=2)
    assert (refused.value.status, refused.value.slug) == (402, "plan-payment-required")
    buyer.deposit(tenant_id, "500.00")
    before = operator.revenue()["streams"]["plans"]["amount_minor"]
    bought = buyer.change_plan("PROFESSIONAL", agents=2)
    assert (bought["plan"], bought["net"], bought["agents"]) == ("PROFESSIONAL", "198.00", 2)
    assert buyer.plan()["term"]["price"] == "198.00"
    usage = buyer.usage()
    assert (usage["plan"], usage["limits"]["requests_per_minute"]) == ("PROFESSIONAL", 500)
    listed = buyer.invoices(limit=10)
    assert [i["invoice_id"] for i in listed["data"]] == [bought["invoice"]["invoice_id"]]
    assert buyer.invoice(bought["invoice"]["invoice_id"])["amount"] == "198.00"
    assert operator.revenue()["streams"]["plans"]["amount_minor"] - before == 19_800
    assert operator.revenue(period="1999-01")["total_minor"] == 0


def test_the_sdk_drives_challenges_delegations_and_status_lists(server: Server) -> None:
    with socket.socket() as probe:  # a port nobody listens on: the challenge fails
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    agent, provider_id = _agent(server, f"http://127.0.0.1:{port}/a2a")
    challenge = agent.open_challenge(provider_id, public_key_to_jwk(_key().public_key))
    assert agent.challenge(challenge["token"])["state"] == "PENDING"
    decided = agent.validate_challenge(challenge["token"])
    assert decided["state"] == "INVALID"
    # A delegation: the resold provider's key signs, the reseller files, the delegator revokes.
    delegator, delegator_id = agent, provider_id
    reseller, reseller_id = _agent(server, "https://reseller.example/a2a")
    key = _key()
    registered = delegator.register_delegation_key(delegator_id, public_key_to_jwk(key.public_key))
    assert registered["provider_id"] == delegator_id
    now_s = int(time.time())
    token = sign_delegation(
        delegation_id=f"dlg_{uuid.uuid4().hex[:16]}",
        delegator_provider_id=delegator_id,
        reseller_provider_id=reseller_id,
        scope=[("TECHNOLOGY", "code.review")],
        issued_at_s=now_s,
        expires_at_s=now_s + 3600,
        signer=key,
    )
    filed = reseller.register_delegation(token)
    assert reseller.delegation(filed["delegation_id"])["delegation_id"] == filed["delegation_id"]
    assert delegator.revoke_delegation(filed["delegation_id"])["state"] == "REVOKED"
    status_list = Client(server.url).status_list(0)
    assert isinstance(status_list, str)
    assert status_list.count(".") == 2  # a compact JWS (VC-JWT)
