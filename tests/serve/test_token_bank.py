"""The token bank over real HTTP, on both backends (issue 15 item 3; docs/payments.md "Token
bank"): vouchers issued by the operator with the code shown once, redeemed into a credit bucket
exactly once even in parallel, spent on work before cash, never withdrawn, expired to breakage
by a sweep with an explicit now_ms; the ledger sums to zero throughout."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from aex.client import Client
from tests.serve.conftest import Tenant, sign_up
from tests.serve.market_helpers import (
    OPERATOR,
    bid,
    complete,
    provider,
    submit_work,
    wait_for_status,
)
from tests.serve.server import Backend, Server

LATER = int((datetime.now(UTC) + timedelta(days=30)).timestamp() * 1000)


def issue(client: httpx.Client, amount: object = "25.00", **changes: Any) -> dict[str, Any]:
    body = {"amount": amount, "currency": "USD", "expires_at_ms": LATER, **changes}
    response = client.post("/v1/admin/vouchers", json=body, headers=OPERATOR)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    found: dict[str, Any] = response.json()
    return found


def redeem(client: httpx.Client, tenant: Tenant, code: str) -> httpx.Response:
    return client.post("/v1/vouchers/redeem", json={"code": code}, headers=tenant.headers)


def wallet(client: httpx.Client, tenant: Tenant) -> dict[str, Any]:
    response = client.get("/v1/balance", params={"currency": "USD"}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def slug(response: httpx.Response) -> str:
    return str(response.json()["type"]).rsplit("/", 1)[-1]


def assert_ledger_balances(backend: Backend, server: Server) -> None:
    with backend.ledger(server.data_dir) as ledger:
        assert all(total == 0 for total in ledger.totals_by_currency().values())
        assert ledger.wallet_mismatches() == []


def event_types(backend: Backend, server: Server, subject_id: str) -> list[str]:
    with backend.market_db(server.data_dir) as db:
        rows = db.read("SELECT type FROM outbox WHERE subject_id = ? ORDER BY seq", (subject_id,))
    return [row[0] for row in rows]


def close_window(client: httpx.Client, acme: Tenant, work_id: str) -> str:
    """The operator closes the window now; a 504 (the evaluator's first JIT compile on a
    loaded machine) is retried: the close itself is exactly once."""
    for _ in range(4):
        response = client.post(f"/v1/admin/work/{work_id}/close", headers=OPERATOR)
        if response.status_code != 504:
            break
    found = wait_for_status(client, acme, work_id, {"AWARDED"}, timeout_s=60)
    return str(found["contract_id"])


def test_a_voucher_redeemed_in_parallel_credits_once(
    client: httpx.Client, server: Server, backend: Backend
) -> None:
    voucher = issue(client, "40.00")
    assert voucher["voucher"]["max_redemptions"] == 1
    tenants = [sign_up(client, f"Racer {n}") for n in range(4)]
    # Each tenant twice at once: eight redemptions of a single-use code race.
    racers = [t for t in tenants for _ in range(2)]
    with ThreadPoolExecutor(len(racers)) as pool:
        answers = list(pool.map(lambda t: redeem(client, t, voucher["code"]), racers))
    won = [r for r in answers if r.status_code == 201]
    assert len(won) == 1, [r.text for r in answers]
    lost = {slug(r) for r in answers if r.status_code != 201}
    assert lost <= {"voucher-exhausted", "voucher-already-redeemed"}, lost
    credits = sorted(wallet(client, t)["credit"] for t in tenants)
    assert credits == ["0.00", "0.00", "0.00", "40.00"]
    voucher_id = voucher["voucher"]["voucher_id"]
    found = client.get(f"/v1/admin/vouchers/{voucher_id}", headers=OPERATOR).json()
    assert found["redemptions"] == 1
    assert event_types(backend, server, voucher_id) == ["voucher.issued", "voucher.redeemed"]
    winner = next(t for t, r in zip(racers, answers, strict=True) if r.status_code == 201)
    history = client.get("/v1/transactions", headers=winner.headers).json()["data"]
    assert [(t["kind"], t["credit_change"], t["available_change"]) for t in history] == [
        ("redeem", "40.00", "0.00")
    ]
    assert_ledger_balances(backend, server)


def test_a_multi_use_voucher_credits_each_tenant_once_up_to_its_limit(
    client: httpx.Client,
) -> None:
    code = issue(client, "5.50", max_redemptions=2)["code"]
    first, second, third = (sign_up(client, f"Campaign {n}") for n in range(3))
    assert redeem(client, first, code).status_code == 201
    again = redeem(client, first, code)
    assert (again.status_code, slug(again)) == (409, "voucher-already-redeemed")
    assert redeem(client, second, code).json()["credit"] == "5.50"
    late = redeem(client, third, code)
    assert (late.status_code, slug(late)) == (409, "voucher-exhausted")
    assert wallet(client, third)["credit"] == "0.00"


def test_wrong_expired_and_invalid_vouchers_are_refused_and_credit_nothing(
    client: httpx.Client, tenant: Tenant
) -> None:
    wrong = redeem(client, tenant, "aexv_not-a-real-code")
    assert (wrong.status_code, slug(wrong)) == (404, "voucher-not-found")
    soon = datetime.now(UTC) + timedelta(seconds=3)
    code = issue(client, "3.00", expires_at_ms=int(soon.timestamp() * 1000))["code"]
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.2)
    expired = redeem(client, tenant, code)
    assert (expired.status_code, slug(expired)) == (410, "voucher-expired")
    cases: list[tuple[dict[str, object], int, str]] = [
        ({"expires_at_ms": 978307200000}, 422, "voucher-expiry-not-in-future"),
        ({"expires_at_ms": "2999-01-01T00:00:00Z"}, 422, "invalid-request"),
        ({"amount": "0"}, 422, "voucher-amount-not-positive"),
        ({"amount": "0.001"}, 422, "amount-precision-exceeded"),
        ({"max_redemptions": 0}, 422, "voucher-redemptions-out-of-range"),
    ]
    for body, status, refused in cases:
        full: dict[str, object] = {"amount": "1.00", "currency": "USD", "expires_at_ms": LATER}
        full |= body
        response = client.post("/v1/admin/vouchers", json=full, headers=OPERATOR)
        assert (response.status_code, slug(response)) == (status, refused), response.text
    # Only the operator issues vouchers.
    body = {"amount": "1.00", "currency": "USD", "expires_at_ms": LATER}
    assert client.post("/v1/admin/vouchers", json=body, headers=tenant.headers).status_code == 403
    assert wallet(client, tenant)["credit"] == "0.00"


def test_credit_is_never_withdrawn_and_expired_credit_becomes_breakage(
    client: httpx.Client, server: Server, backend: Backend, tenant: Tenant
) -> None:
    # Far enough ahead that the server's own sweep (at the real time) does not take it first.
    expires = datetime.now(UTC) + timedelta(minutes=10)
    code = issue(client, "25.00", expires_at_ms=int(expires.timestamp() * 1000))["code"]
    assert redeem(client, tenant, code).status_code == 201
    body = {"tenant_id": tenant.tenant_id, "amount": "10.00", "currency": "USD"}
    assert client.post("/v1/deposits", json=body, headers=tenant.headers).status_code == 201
    too_much = {**body, "amount": "10.01"}
    refused = client.post("/v1/withdrawals", json=too_much, headers=tenant.headers)
    assert (refused.status_code, slug(refused)) == (422, "ledger-insufficient-funds")
    assert client.post("/v1/withdrawals", json=body, headers=tenant.headers).status_code == 201
    shown = wallet(client, tenant)
    assert (shown["available"], shown["credit"]) == ("0.00", "25.00")
    # A sweep before the expiry moves nothing; one at the expiry moves it all to breakage.
    expires_ms = int(expires.timestamp() * 1000)
    assert shown["credit_expires_at_ms"] == expires_ms
    early = client.post(
        "/v1/admin/credit/expire", json={"now_ms": expires_ms - 1000}, headers=OPERATOR
    )
    assert tenant.tenant_id not in json.dumps(early.json())
    swept = client.post("/v1/admin/credit/expire", json={"now_ms": expires_ms}, headers=OPERATOR)
    assert swept.status_code == 200, swept.text
    mine = [e for e in swept.json()["expired"] if e["tenant_id"] == tenant.tenant_id]
    assert [e["amount"] for e in mine] == ["25.00"]
    assert wallet(client, tenant)["credit"] == "0.00"
    assert event_types(backend, server, tenant.tenant_id)[-1] == "credit.expired"
    assert_ledger_balances(backend, server)


def test_work_is_paid_with_credit_before_cash_and_the_provider_in_cash(
    client: httpx.Client, server: Server, backend: Backend
) -> None:
    acme = sign_up(client, "Credit Corp", "CONSUMER")
    assert redeem(client, acme, issue(client, "150.00")["code"]).status_code == 201
    body = {"tenant_id": acme.tenant_id, "amount": "100.00", "currency": "USD"}
    assert client.post("/v1/deposits", json=body, headers=acme.headers).status_code == 201
    # The budget hold (200) takes all 150 of credit, then 50 of cash.
    work = submit_work(client, acme)
    held = wallet(client, acme)
    assert (held["credit"], held["available"], held["held"]) == ("0.00", "50.00", "200.00")
    bot = provider(client)
    assert bid(client, bot, work["work_id"], 100).status_code == 201
    contract_id = close_window(client, acme, work["work_id"])
    # At award the budget goes back (credit as credit) and the price is held: credit first.
    awarded = wallet(client, acme)
    assert (awarded["credit"], awarded["available"], awarded["held"]) == (
        "50.00",
        "100.00",
        "100.00",
    )
    assert complete(client, bot, contract_id).status_code == 200
    disputed = client.post(
        f"/v1/contracts/{contract_id}/dispute", json={"reason": "check"}, headers=acme.headers
    )
    assert disputed.status_code == 200, disputed.text
    resolved = client.post(
        f"/v1/admin/contracts/{contract_id}/resolve",
        json={"resolution": "pay_out"},
        headers=OPERATOR,
    )
    assert resolved.status_code == 200, resolved.text
    # The provider is paid in cash (price - 15% fee) although credit funded the price; the
    # platform settled the credit part (credit_outstanding += 100, external_funding -= 100).
    owner = wallet(client, bot.owner)
    assert (owner["available"], owner["credit"]) == ("85.00", "0.00")
    paid = wallet(client, acme)
    assert (paid["credit"], paid["available"], paid["held"]) == ("50.00", "100.00", "0.00")
    # What is left of the credit still cannot leave as cash.
    too_much = {"tenant_id": acme.tenant_id, "amount": "100.01", "currency": "USD"}
    refused = client.post("/v1/withdrawals", json=too_much, headers=acme.headers)
    assert slug(refused) == "ledger-insufficient-funds"
    assert_ledger_balances(backend, server)


def test_the_sdk_redeems_and_shows_credit(client: httpx.Client, server: Server) -> None:
    tenant = sign_up(client, "SDK Corp")
    code = issue(client, "7.25")["code"]
    with Client(server.url, api_key=tenant.api_key) as sdk:
        redeemed = sdk.redeem_voucher(code)
        assert redeemed["credit"] == "7.25"
        assert sdk.balance()["credit"] == "7.25"
    with Client(server.url, api_key=OPERATOR["X-API-Key"]) as operator:
        issued = operator.issue_voucher("1.00", expires_at_ms=LATER, max_redemptions=3)
        assert issued["code"].startswith("aexv_")
        assert operator.voucher(issued["voucher"]["voucher_id"])["max_redemptions"] == 3
