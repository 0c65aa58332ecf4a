"""Helpers for the market tests: actors over real HTTP (consumers, providers) and money reads."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.serve.conftest import Tenant, sign_up
from tests.serve.server import OPERATOR_KEY

OPERATOR = {"X-API-Key": OPERATOR_KEY}


@dataclass(frozen=True)
class Provider:
    provider_id: str
    api_key: str
    owner: Tenant

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}


def consumer(client: httpx.Client, funds: object = "10000", plan: str | None = None) -> Tenant:
    tenant = sign_up(client, "Acme Corp", "CONSUMER")
    if plan is not None:
        set_plan(client, tenant, plan)
    if funds:
        body = {"tenant_id": tenant.tenant_id, "amount": funds, "currency": "USD"}
        response = client.post("/v1/deposits", json=body, headers=tenant.headers)
        assert response.status_code == 201, response.text
    return tenant


def set_plan(client: httpx.Client, tenant: Tenant, plan: str) -> None:
    """The operator moves a tenant to a plan (a new tenant starts on EXPLORER)."""
    response = client.put(
        f"/v1/admin/tenants/{tenant.tenant_id}/plan", json={"plan": plan}, headers=OPERATOR
    )
    assert response.status_code == 200, response.text


def provider(
    client: httpx.Client,
    *,
    categories: tuple[str, ...] = ("TECHNOLOGY",),
    subscribe: bool = True,
    plan: str | None = None,
) -> Provider:
    owner = sign_up(client, "Agent Developer", "PROVIDER")
    if plan is not None:
        set_plan(client, owner, plan)
    body = {
        "name": "CodeReviewBot",
        "type": "AI_AGENT",
        "capabilities": ["code_review", "security_audit"],
        "category": "TECHNOLOGY",
    }
    response = client.post("/v1/providers", json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    created = response.json()
    agent = Provider(created["provider_id"], created["api_key"], owner)
    if subscribe:
        body = {"provider_id": agent.provider_id, "categories": list(categories)}
        response = client.post("/v1/subscriptions", json=body, headers=agent.headers)
        assert response.status_code == 201, response.text
    return agent


def hooked_provider(client: httpx.Client, endpoint: str, name: str = "HookBot") -> dict[str, Any]:
    """A provider with a webhook `endpoint`, subscribed to TECHNOLOGY: its registration answer
    (provider_id, api_key, api_secret, webhook_secret)."""
    owner = sign_up(client, "Hooked", "PROVIDER")
    body = {
        "name": name,
        "type": "AI_AGENT",
        "capabilities": ["code_review"],
        "category": "TECHNOLOGY",
        "endpoint": endpoint,
    }
    response = client.post("/v1/providers", json=body, headers=owner.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    subscription = {"provider_id": created["provider_id"], "categories": ["TECHNOLOGY"]}
    subscribed = client.post(
        "/v1/subscriptions", json=subscription, headers={"X-API-Key": created["api_key"]}
    )
    assert subscribed.status_code == 201, subscribed.text
    return created


def work_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Review Go microservices codebase",
        "category": "TECHNOLOGY",
        "budget": {"min": 50, "max": 200, "currency": "USD"},
        "requirements": {"language": "Go", "scope": "security"},
        "success_criteria": [{"metric": "coverage", "threshold": 0.8}],
        "bid_window_seconds": 5,
    }
    body.update(changes)
    return body


def submit_work(client: httpx.Client, tenant: Tenant, **changes: Any) -> dict[str, Any]:
    response = client.post("/v1/work", json=work_body(**changes), headers=tenant.headers)
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


def bid(
    client: httpx.Client, agent: Provider, work_id: str, price: object = 100, **changes: Any
) -> httpx.Response:
    body: dict[str, Any] = {
        "work_id": work_id,
        "provider_id": agent.provider_id,
        "price": price,
        "confidence": 0.95,
        "estimated_duration": "2h",
        "sla": {"max_turnaround": "4h"},
    }
    body.update(changes)
    return client.post("/v1/bids", json=body, headers=agent.headers)


def close_now(client: httpx.Client, work_id: str) -> dict[str, Any]:
    response = client.post(f"/v1/admin/work/{work_id}/close", headers=OPERATOR)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def wait_for_status(
    client: httpx.Client, tenant: Tenant, work_id: str, wanted: set[str], timeout_s: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        found: dict[str, Any] = client.get(f"/v1/work/{work_id}", headers=tenant.headers).json()
        if found["status"] in wanted:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.1)


def balance(client: httpx.Client, tenant: Tenant) -> tuple[str, str]:
    found = client.get("/v1/balance", params={"currency": "USD"}, headers=tenant.headers).json()
    return found["available"], found["held"]


def platform_revenue(client: httpx.Client) -> str:
    response = client.get("/v1/admin/platform-revenue", headers=OPERATOR)
    assert response.status_code == 200, response.text
    return str(response.json()["amount"])


def complete(
    client: httpx.Client, agent: Provider, contract_id: str, coverage: float = 0.9
) -> httpx.Response:
    body = {"results": {"report": "ok"}, "metrics": {"coverage": coverage}}
    return client.post(f"/v1/contracts/{contract_id}/complete", json=body, headers=agent.headers)


def every_row(
    client: httpx.Client, path: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every row of a paged list, walked by `next_cursor` as a client would."""
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1_000):  # pages walked at most: far past any test's data
        query = {**params, "limit": 100} | ({} if cursor is None else {"starting_after": cursor})
        response = client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        rows += page["data"]
        if not page["has_more"]:
            return rows
        cursor = page["next_cursor"]
    raise AssertionError(f"{path}: the walk did not end")
