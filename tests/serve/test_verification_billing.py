"""Issue 15 item 4: Verification API calls are charged $0.001 each, exactly: the calls accrue in
micro-dollars and every whole cent is posted to the ledger as it falls due, from the caller's
USD cash into `system:verification_revenue`. Over real HTTP, on both backends."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from aex.core.certs import Authorization
from tests.serve.market_helpers import consumer, provider
from tests.serve.server import Backend, Server
from tests.serve.test_market_certificates import signed_request


def _certificate(client: httpx.Client) -> str:
    bot = provider(client)
    requested = client.post(
        "/v1/certificates/request",
        json=signed_request(bot, Authorization.SELF_ASSERTED),
        headers=bot.headers,
    )
    assert requested.status_code == 201, requested.text
    return str(requested.json()["certificate_id"])


def _verify(client: httpx.Client, headers: dict[str, str], cert_id: str) -> httpx.Response:
    return client.post("/v1/certificates/verify", json={"certificate_id": cert_id}, headers=headers)


def _verify_many(server: Server, headers: dict[str, str], cert_id: str, count: int) -> None:
    """`count` verifications from four clients at once (concurrent calls must each be billed)."""

    def run(share: int) -> list[int]:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            return [_verify(http, headers, cert_id).status_code for _ in range(share)]

    shares = [count // 4 + (1 if i < count % 4 else 0) for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = [status for part in pool.map(run, shares) for status in part]
    assert statuses == [200] * count


def _balance(client: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get("/v1/balance", params={"currency": "USD"}, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_one_thousand_verification_calls_post_exactly_one_dollar(
    client: httpx.Client, server: Server, backend: Backend
) -> None:
    cert_id, verifier = _certificate(client), consumer(client, funds="5.00", plan="BUSINESS")
    for n in range(1, 11):
        answer = _verify(client, verifier.headers, cert_id)
        assert answer.status_code == 200, answer.text
        if n == 9:  # nine calls: 0.9 cent owed, nothing posted yet
            assert _balance(client, verifier.headers)["available"] == "5.00"
    assert _balance(client, verifier.headers)["available"] == "4.99"
    _verify_many(server, verifier.headers, cert_id, 990)
    assert _balance(client, verifier.headers)["available"] == "4.00"
    usage = client.get("/v1/certificates/usage", headers=verifier.headers).json()
    assert (usage["verification_calls"], usage["charged_usd"]) == (1000, "1.00")
    assert usage["amount_due_usd"] == "1.000000"
    billed = client.get("/v1/usage", headers=verifier.headers).json()
    assert billed["verification"]["charged"] == "1.00"
    assert billed["period"]["verification_charged"] == "1.00"  # all posted this month
    with backend.ledger(server.data_dir) as ledger:
        assert set(ledger.totals_by_currency().values()) == {0}
        assert ledger.wallet_mismatches() == []


def _seed_calls(backend: Backend, server: Server, tenant_id: str, calls: int) -> None:
    """Stands for `calls` earlier verification calls never paid (nothing posted): what 990
    calls over HTTP would leave, without sending them (the 1,000-call test above does)."""

    def write(session: Any) -> None:
        session.connection.execute(
            "INSERT INTO verification_calls (tenant_id, calls, cents_posted) VALUES (?, ?, 0)",
            (tenant_id, calls),
        )

    with backend.market_db(server.data_dir) as db:
        db.run(write)


def test_a_tenant_without_cash_verifies_on_arrears_up_to_a_dollar_then_is_refused(
    client: httpx.Client, server: Server, backend: Backend
) -> None:
    cert_id, verifier = _certificate(client), consumer(client, funds=None, plan="BUSINESS")
    _seed_calls(backend, server, verifier.tenant_id, 990)
    _verify_many(server, verifier.headers, cert_id, 10)  # 100 cents owed: the allowed arrears
    for _ in range(9):  # 100.9 cents: no new whole cent beyond the arrears yet
        assert _verify(client, verifier.headers, cert_id).status_code == 200
    refused = _verify(client, verifier.headers, cert_id)
    assert refused.status_code == 402, refused.text
    assert refused.json()["type"].endswith("/verification-payment-required")
    usage = client.get("/v1/certificates/usage", headers=verifier.headers).json()
    assert usage["verification_calls"] == 1009  # the refused call was not counted
    assert usage["arrears_usd"] == "1.00"
    # A deposit pays the arrears at the next call, which is served again.
    deposit = {"tenant_id": verifier.tenant_id, "amount": "2.00", "currency": "USD"}
    assert client.post("/v1/deposits", json=deposit, headers=verifier.headers).status_code == 201
    assert _verify(client, verifier.headers, cert_id).status_code == 200
    assert _balance(client, verifier.headers)["available"] == "0.99"
    usage = client.get("/v1/certificates/usage", headers=verifier.headers).json()
    assert (usage["charged_usd"], usage["arrears_usd"]) == ("1.01", "0.00")
    with backend.ledger(server.data_dir) as ledger:
        assert set(ledger.totals_by_currency().values()) == {0}
