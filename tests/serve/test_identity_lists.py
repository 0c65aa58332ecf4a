"""GET /v1/keys, /v1/admin/tenants, /v1/providers and /v1/subscriptions page as
GET /v1/contracts does: newest first, `limit` and `starting_after`, `{data, has_more,
next_cursor}`; a cursor naming none of the caller's own rows is a 422 naming `starting_after`,
alike for another's id and an id that names nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.serve.conftest import Tenant, sign_up
from tests.serve.market_helpers import set_plan


def _page(client: httpx.Client, path: str, headers: dict[str, str], **params: Any) -> Any:
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _ids(page: Any, field: str) -> list[str]:
    return [record[field] for record in page["data"]]


def _newest_first(page: Any, field: str, expected: set[str]) -> list[str]:
    # Newest created first; two made in the same millisecond by id, descending.
    order = [(record["created_at_ms"], record[field]) for record in page["data"]]
    assert order == sorted(order, reverse=True)
    assert set(_ids(page, field)) == expected
    return _ids(page, field)


def _refused_cursor(
    client: httpx.Client, path: str, headers: dict[str, str], cursor: str, reason: str
) -> None:
    response = client.get(path, params={"starting_after": cursor}, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"field": "starting_after", "reason": reason}]


def _register(client: httpx.Client, owner: Tenant) -> tuple[str, str]:
    body = {"name": "bot", "type": "AI_AGENT", "capabilities": ["x"], "category": "TECHNOLOGY"}
    created = client.post("/v1/providers", json=body, headers=owner.headers)
    assert created.status_code == 201, created.text
    return created.json()["provider_id"], created.json()["api_key"]


def test_keys_page_newest_first_and_a_foreign_cursor_is_refused(
    client: httpx.Client, tenant: Tenant, other_tenant: Tenant
) -> None:
    minted = [client.post("/v1/keys", headers=tenant.headers).json()["key_id"] for _ in range(2)]
    everything = _page(client, "/v1/keys", tenant.headers)
    ids = _newest_first(everything, "key_id", {*minted, tenant.key_id})
    assert (everything["has_more"], everything["next_cursor"]) == (False, None)
    first = _page(client, "/v1/keys", tenant.headers, limit=2)
    assert (_ids(first, "key_id"), first["has_more"], first["next_cursor"]) == (
        ids[:2],
        True,
        ids[1],
    )
    rest = _page(client, "/v1/keys", tenant.headers, limit=2, starting_after=first["next_cursor"])
    assert (_ids(rest, "key_id"), rest["has_more"]) == (ids[2:], False)
    _refused_cursor(client, "/v1/keys", other_tenant.headers, ids[0], "unknown_key")
    _refused_cursor(client, "/v1/keys", tenant.headers, "key_ffffffffffffffff", "unknown_key")


def test_the_operator_pages_every_tenant_newest_first(
    client: httpx.Client, operator: dict[str, str]
) -> None:
    made = {sign_up(client, f"Listed {n}").tenant_id for n in range(3)}
    newest = _newest_first(_page(client, "/v1/admin/tenants", operator, limit=3), "tenant_id", made)
    first = _page(client, "/v1/admin/tenants", operator, limit=2)
    assert (_ids(first, "tenant_id"), first["has_more"]) == (newest[:2], True)
    after = _page(client, "/v1/admin/tenants", operator, limit=1, starting_after=newest[1])
    assert _ids(after, "tenant_id") == newest[2:]
    _refused_cursor(client, "/v1/admin/tenants", operator, "ten_ffffffffffffffff", "unknown_tenant")


def test_providers_and_subscriptions_page_for_the_owner_and_for_each_provider_key(
    client: httpx.Client, other_tenant: Tenant
) -> None:
    owner = sign_up(client, "Agent Developer", "PROVIDER")
    set_plan(client, owner, "BUSINESS")
    registered = dict([_register(client, owner), _register(client, owner)])
    second_id, first_id = _newest_first(
        _page(client, "/v1/providers", owner.headers), "provider_id", set(registered)
    )
    first_key = registered[first_id]
    listed = _page(client, "/v1/providers", owner.headers, limit=1)
    assert (_ids(listed, "provider_id"), listed["next_cursor"]) == ([second_id], second_id)
    rest = _page(client, "/v1/providers", owner.headers, starting_after=second_id)
    assert (_ids(rest, "provider_id"), rest["has_more"]) == ([first_id], False)
    agent = {"X-API-Key": first_key}
    assert _ids(_page(client, "/v1/providers", agent), "provider_id") == [first_id]
    _refused_cursor(client, "/v1/providers", agent, second_id, "unknown_provider")
    _refused_cursor(client, "/v1/providers", other_tenant.headers, first_id, "unknown_provider")
    made = []
    for provider_id in (first_id, second_id, first_id):
        body = {"provider_id": provider_id, "categories": ["TECHNOLOGY"]}
        created = client.post("/v1/subscriptions", json=body, headers=owner.headers)
        assert created.status_code == 201, created.text
        made.append(created.json()["subscription_id"])
    page = _page(client, "/v1/subscriptions", owner.headers, limit=2)
    assert (_ids(page, "subscription_id"), page["has_more"]) == (made[:0:-1], True)
    rest = _page(client, "/v1/subscriptions", owner.headers, starting_after=page["next_cursor"])
    assert _ids(rest, "subscription_id") == [made[0]]
    own = _page(client, "/v1/subscriptions", agent)
    assert _ids(own, "subscription_id") == [made[2], made[0]]
    _refused_cursor(client, "/v1/subscriptions", agent, made[1], "unknown_subscription")
    _refused_cursor(
        client, "/v1/subscriptions", other_tenant.headers, made[0], "unknown_subscription"
    )


@pytest.mark.parametrize("path", ["/v1/keys", "/v1/providers", "/v1/subscriptions"])
@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"starting_after": ""}])
def test_a_limit_out_of_bounds_or_an_empty_cursor_is_a_422_naming_it(
    client: httpx.Client, tenant: Tenant, path: str, params: dict[str, Any]
) -> None:
    response = client.get(path, params=params, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == list(params)
