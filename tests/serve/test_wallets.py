"""Wallets over real HTTP: exact deposits, withdrawals, balance, history, idempotency."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.serve.conftest import Tenant
from tests.serve.server import Backend, Server


def deposit(
    client: httpx.Client, tenant: Tenant, amount: object, *, key: str | None = None, **extra: object
) -> httpx.Response:
    headers = dict(tenant.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    body = {"tenant_id": tenant.tenant_id, "amount": amount, "currency": "USD", **extra}
    return client.post("/v1/deposits", json=body, headers=headers)


def balance(client: httpx.Client, tenant: Tenant, currency: str = "USD") -> dict[str, str]:
    response = client.get("/v1/balance", params={"currency": currency}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def test_deposit_moves_exact_amounts(client: httpx.Client, tenant: Tenant) -> None:
    first = deposit(client, tenant, 10000)
    assert first.status_code == 201, first.text
    assert first.json()["balance"]["available"] == "10000.00"
    raw = b'{"tenant_id": "%s", "amount": 0.10, "currency": "USD"}' % tenant.tenant_id.encode()
    headers = {**tenant.headers, "content-type": "application/json"}
    assert client.post("/v1/deposits", content=raw, headers=headers).status_code == 201
    assert deposit(client, tenant, "0.20").status_code == 201
    assert balance(client, tenant) == {
        "tenant_id": tenant.tenant_id,
        "currency": "USD",
        "available": "10000.30",
        "held": "0.00",
        "credit": "0.00",
        "credit_expires_at_ms": None,
    }


@pytest.mark.parametrize(
    ("amount", "status", "slug", "field"),
    [
        ("0.001", 422, "amount-precision-exceeded", "amount"),
        (0, 422, "ledger-amount-not-positive", "amount"),
        (-5, 422, "ledger-amount-not-positive", "amount"),
        ("NaN", 422, "amount-not-finite", "amount"),
        (True, 422, "invalid-request", "amount"),
        ("ten", 422, "invalid-request", "amount"),
    ],
)
def test_bad_amounts_are_refused_and_write_nothing(
    client: httpx.Client, tenant: Tenant, amount: object, status: int, slug: str, field: str
) -> None:
    response = deposit(client, tenant, amount)
    assert response.status_code == status, response.text
    assert response.json()["type"].endswith("/" + slug)
    assert balance(client, tenant)["available"] == "0.00"


def test_unknown_currency_and_foreign_tenant_are_refused(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    euro_less = deposit(client, tenant, 1, currency="XYZ")
    assert euro_less.status_code == 422
    assert euro_less.json()["errors"][0]["field"] == "currency"
    body = {"tenant_id": other_tenant.tenant_id, "amount": 5, "currency": "USD"}
    foreign = client.post("/v1/deposits", json=body, headers=tenant.headers)
    assert foreign.status_code == 403
    assert foreign.json()["errors"] == [{"field": "tenant_id", "reason": "not_the_caller"}]
    assert balance(client, other_tenant)["available"] == "0.00"


def test_withdrawal_needs_funds(client: httpx.Client, tenant: Tenant) -> None:
    deposit(client, tenant, "50.00")
    body = {"tenant_id": tenant.tenant_id, "amount": "20.5", "currency": "USD"}
    assert client.post("/v1/withdrawals", json=body, headers=tenant.headers).status_code == 201
    too_much = client.post("/v1/withdrawals", json={**body, "amount": "30"}, headers=tenant.headers)
    assert too_much.status_code == 422
    assert too_much.json()["type"].endswith("/ledger-insufficient-funds")
    assert balance(client, tenant)["available"] == "29.50"
    history = client.get("/v1/transactions", headers=tenant.headers).json()["data"]
    assert [(h["kind"], h["available_change"]) for h in history] == [
        ("withdraw", "-20.50"),
        ("deposit", "50.00"),
    ]


def test_idempotency_key_replays_or_answers_422(client: httpx.Client, tenant: Tenant) -> None:
    first = deposit(client, tenant, 7, key="k-1")
    again = deposit(client, tenant, 7, key="k-1")
    assert again.status_code == 201
    assert again.json() == {**first.json(), "replayed": True}
    assert again.headers["idempotent-replayed"] == "true"
    other_body = deposit(client, tenant, 8, key="k-1")
    assert other_body.status_code == 422
    assert other_body.json()["type"].endswith("/idempotency-key-reused")
    assert balance(client, tenant)["available"] == "7.00"


def test_idempotency_keys_are_per_tenant(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    assert deposit(client, tenant, 3, key="shared").status_code == 201
    assert deposit(client, other_tenant, 4, key="shared").status_code == 201
    assert balance(client, tenant)["available"] == "3.00"
    assert balance(client, other_tenant)["available"] == "4.00"


def test_100_concurrent_deposits_with_mixed_keys_leave_the_expected_balance(
    server: Server, tenant: Tenant, backend: Backend
) -> None:
    # 40 unique keys each sent twice (80 requests) + 20 without a key: 60 distinct deposits.
    keys = [f"burst-{uuid.uuid4().hex}" for _ in range(40)]
    requests = [(k, 1) for k in keys] * 2 + [(None, 1)] * 20
    assert len(requests) == 100

    def send(item: tuple[str | None, int]) -> int:
        key, amount = item
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for _ in range(50):  # a duplicate still in flight answers 409: retry it
                response = deposit(http, tenant, amount, key=key)
                if response.status_code != 409:
                    return response.status_code
        return 409

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(send, requests))
    assert statuses == [201] * 100
    with httpx.Client(base_url=server.url) as http:
        assert balance(http, tenant)["available"] == "60.00"
    with backend.ledger(server.data_dir) as ledger:
        assert set(ledger.totals_by_currency().values()) == {0}
        assert ledger.wallet_mismatches() == []
