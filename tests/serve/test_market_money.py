"""Money integrity over real HTTP, on both backends (issue 11 items 5, 6 and 7): a payout is not
withdrawable while it can still be refunded and a dispute resolves both ways; no self-dealing
and no reputation from fee-free contracts; the plan's concurrent tasks and certificates."""

from __future__ import annotations

import time
from typing import Any

import httpx

from aex.core.certs import Authorization
from aex.core.market import DISPUTE_WINDOW_MS
from serve.stores.market_db import Session
from tests.serve.conftest import Tenant, sign_up
from tests.serve.market_helpers import (
    OPERATOR,
    Provider,
    balance,
    bid,
    close_now,
    complete,
    consumer,
    provider,
    set_plan,
    submit_work,
)
from tests.serve.server import Backend, Server
from tests.serve.test_market_certificates import signed_request


def settled_contract(client: httpx.Client, acme: Tenant, bot: Provider, price: object = 100) -> str:
    work = submit_work(client, acme)
    assert bid(client, bot, work["work_id"], price).status_code == 201
    contract_id = str(close_now(client, work["work_id"])["contract_id"])
    settled = complete(client, bot, contract_id)
    assert settled.status_code == 200, settled.text
    assert settled.json()["status"] == "SETTLED"
    return contract_id


def withdraw(client: httpx.Client, tenant: Tenant, amount: str) -> httpx.Response:
    body = {"tenant_id": tenant.tenant_id, "amount": amount, "currency": "USD"}
    return client.post("/v1/withdrawals", json=body, headers=tenant.headers)


def resolve(client: httpx.Client, contract_id: str, resolution: str) -> dict[str, Any]:
    response = client.post(
        f"/v1/admin/contracts/{contract_id}/resolve",
        json={"resolution": resolution},
        headers=OPERATOR,
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def dispute(client: httpx.Client, acme: Tenant, contract_id: str) -> httpx.Response:
    return client.post(
        f"/v1/contracts/{contract_id}/dispute", json={"reason": "wrong repo"}, headers=acme.headers
    )


# -- item 5: money during a dispute ---------------------------------------------------------


def test_a_payout_is_not_withdrawable_in_the_dispute_window_and_a_refund_still_applies(
    client: httpx.Client,
) -> None:
    acme, bot = consumer(client), provider(client)
    own = {"tenant_id": bot.owner.tenant_id, "amount": "10.00", "currency": "USD"}
    assert client.post("/v1/deposits", json=own, headers=bot.owner.headers).status_code == 201
    contract_id = settled_contract(client, acme, bot)
    # The attack: take the payout while the consumer may still dispute it. Refused: the price
    # stays in escrow through the window.
    grab = withdraw(client, bot.owner, "95.00")
    assert grab.status_code == 422, grab.text
    assert grab.json()["type"].endswith("ledger-insufficient-funds")
    assert balance(client, acme) == ("9900.00", "100.00")
    assert balance(client, bot.owner) == ("10.00", "0.00")
    assert withdraw(client, bot.owner, "10.00").status_code == 201  # its own money, as ever
    contract = client.get(f"/v1/contracts/{contract_id}", headers=bot.headers).json()
    assert (contract["platform_fee"], contract["provider_payout"]) == ("15.00", "85.00")
    assert contract["paid_out_at_ms"] is None
    assert dispute(client, acme, contract_id).status_code == 200
    assert resolve(client, contract_id, "refund")["status"] == "REFUNDED"
    assert balance(client, acme) == ("10000.00", "0.00")
    assert balance(client, bot.owner) == ("0.00", "0.00")


def test_a_dispute_resolved_pay_out_pays_the_provider_at_once(client: httpx.Client) -> None:
    acme, bot = consumer(client), provider(client)
    contract_id = settled_contract(client, acme, bot)
    assert dispute(client, acme, contract_id).status_code == 200
    resolved = resolve(client, contract_id, "pay_out")
    assert resolved["status"] == "SETTLED"
    assert resolved["paid_out_at_ms"] is not None
    assert balance(client, acme) == ("9900.00", "0.00")
    assert balance(client, bot.owner) == ("85.00", "0.00")
    assert withdraw(client, bot.owner, "85.00").status_code == 201


def age_settlement(backend: Backend, server: Server, contract_id: str, by_ms: int) -> None:
    """Time control: the contract settled `by_ms` earlier than it did."""
    with backend.market_db(server.data_dir) as db:

        def write(session: Session) -> None:
            session.connection.execute(
                "UPDATE contracts SET settled_at_ms = settled_at_ms - ? WHERE contract_id = ?",
                (by_ms, contract_id),
            )

        db.run(write)


def wait_for_payout(
    client: httpx.Client, bot: Provider, contract_id: str, timeout_s: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        found: dict[str, Any] = client.get(
            f"/v1/contracts/{contract_id}", headers=bot.headers
        ).json()
        if found["paid_out_at_ms"] is not None:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.1)


def test_an_undisputed_payout_arrives_when_the_window_ends_and_disputes_close(
    server: Server, backend: Backend, client: httpx.Client
) -> None:
    acme, bot = consumer(client), provider(client)
    contract_id = settled_contract(client, acme, bot)
    age_settlement(backend, server, contract_id, DISPUTE_WINDOW_MS - 60_000)
    time.sleep(0.5)  # a minute before the window ends: the sweeper leaves it alone
    assert balance(client, bot.owner) == ("0.00", "0.00")
    age_settlement(backend, server, contract_id, 60_001)
    paid = wait_for_payout(client, bot, contract_id)
    assert paid["status"] == "SETTLED"
    assert balance(client, bot.owner) == ("85.00", "0.00")
    assert balance(client, acme) == ("9900.00", "0.00")
    late = dispute(client, acme, contract_id)
    assert late.status_code == 409, late.text
    assert late.json()["type"].endswith("dispute-window-closed")
    assert withdraw(client, bot.owner, "85.00").status_code == 201


# -- item 6: self-dealing -------------------------------------------------------------------


def test_a_consumer_s_own_provider_may_not_bid_on_its_work(client: httpx.Client) -> None:
    both = sign_up(client, "Self Dealer", "BOTH")
    body = {"tenant_id": both.tenant_id, "amount": "1000", "currency": "USD"}
    assert client.post("/v1/deposits", json=body, headers=both.headers).status_code == 201
    created = client.post(
        "/v1/providers",
        json={
            "name": "SockPuppet",
            "type": "AI_AGENT",
            "capabilities": ["code_review"],
            "category": "TECHNOLOGY",
        },
        headers=both.headers,
    ).json()
    puppet = Provider(created["provider_id"], created["api_key"], both)
    subscription = {"provider_id": puppet.provider_id, "categories": ["TECHNOLOGY"]}
    assert (
        client.post("/v1/subscriptions", json=subscription, headers=puppet.headers).status_code
        == 201
    )
    work = submit_work(client, both, bid_window_seconds=300)
    refused = bid(client, puppet, work["work_id"], 100)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("bid-provider-owned-by-consumer")
    listed = client.get(f"/v1/work/{work['work_id']}/bids", headers=both.headers).json()
    assert listed["data"] == []
    # an unrelated provider bids as before
    assert bid(client, provider(client), work["work_id"], 100).status_code == 201


def test_contracts_too_small_to_pay_a_fee_earn_no_reputation(client: httpx.Client) -> None:
    acme, bot = consumer(client), provider(client)
    tiny = {"min": "0.01", "max": "0.05", "currency": "USD"}
    for _ in range(3):
        work = submit_work(client, acme, budget=tiny)
        assert bid(client, bot, work["work_id"], "0.01").status_code == 201
        contract_id = close_now(client, work["work_id"])["contract_id"]
        settled = complete(client, bot, contract_id).json()
        assert (settled["status"], settled["platform_fee"]) == ("SETTLED", "0.00")
    reputation = client.get(f"/v1/providers/{bot.provider_id}/reputation", headers=acme.headers)
    assert reputation.json()["contracts"] == 0
    assert reputation.json()["tier"] == "BRONZE"
    settled_contract(client, acme, bot, price="1.00")  # one whole dollar, fee 0.15: evidence
    reputation = client.get(f"/v1/providers/{bot.provider_id}/reputation", headers=acme.headers)
    assert reputation.json()["contracts"] == 1


# -- item 7: plan limits --------------------------------------------------------------------


def test_an_explorer_consumer_runs_one_task_at_a_time(client: httpx.Client) -> None:
    acme, bot = consumer(client), provider(client)
    first = submit_work(client, acme)
    refused = client.post("/v1/work", json=_work(), headers=acme.headers)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("concurrent-tasks-exceeded")
    assert balance(client, acme) == ("9800.00", "200.00")  # nothing held for the refused one
    listed = client.get("/v1/work", headers=acme.headers).json()["data"]
    assert [w["work_id"] for w in listed] == [first["work_id"]]
    assert bid(client, bot, first["work_id"], 100).status_code == 201
    contract_id = close_now(client, first["work_id"])["contract_id"]
    # an awarded contract is a running task too
    assert client.post("/v1/work", json=_work(), headers=acme.headers).status_code == 403
    assert complete(client, bot, contract_id).status_code == 200
    submit_work(client, acme)  # settled: the slot is free again
    set_plan(client, acme, "PROFESSIONAL")
    for _ in range(4):
        submit_work(client, acme)
    assert client.post("/v1/work", json=_work(), headers=acme.headers).status_code == 403


def _work() -> dict[str, Any]:
    from tests.serve.market_helpers import work_body

    return work_body(bid_window_seconds=300)


def test_an_explorer_provider_holds_one_certificate_and_professional_five(
    client: httpx.Client,
) -> None:
    bot = provider(client)
    issued = client.post(
        "/v1/certificates/request",
        json=signed_request(bot, Authorization.SELF_ASSERTED),
        headers=bot.headers,
    )
    assert issued.status_code in (200, 201), issued.text
    assert issued.json()["state"] == "ISSUED"
    refused = client.post(
        "/v1/certificates/request",
        json=signed_request(bot, Authorization.SELF_ASSERTED),
        headers=bot.headers,
    )
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("certificates-exceeded")
    set_plan(client, bot.owner, "PROFESSIONAL")
    states = [
        client.post(
            "/v1/certificates/request",
            json=signed_request(bot, Authorization.SELF_ASSERTED),
            headers=bot.headers,
        ).status_code
        for _ in range(5)
    ]
    assert states == [201] * 4 + [403]


def test_approval_refuses_a_certificate_past_the_plan(client: httpx.Client) -> None:
    bot = provider(client, plan="PROFESSIONAL")
    reviewed = [
        client.post(
            "/v1/certificates/request",
            json=signed_request(bot, Authorization.TRANSACTION_EVIDENCE),
            headers=bot.headers,
        ).json()["certificate_id"]
        for _ in range(2)
    ]
    set_plan(client, bot.owner, "EXPLORER")  # downgraded while both wait for review
    approve = f"/v1/admin/certificates/{reviewed[0]}/approve"
    assert client.post(approve, json={"note": "ok"}, headers=OPERATOR).status_code == 200
    second = client.post(
        f"/v1/admin/certificates/{reviewed[1]}/approve", json={"note": "ok"}, headers=OPERATOR
    )
    assert second.status_code == 403, second.text
    assert second.json()["type"].endswith("certificates-exceeded")
