"""201 Created carries `Location` (serve/gateway/locations.py): the created resource's path,
readable by its creator, the same on a replay, and declared in the OpenAPI document. Every 201 route
is either in the table or listed with the reason it has nothing to point at."""

from __future__ import annotations

import uuid

import httpx

from serve.gateway.locations import CREATED_AT, NOT_ADDRESSABLE
from tests.serve.conftest import sign_up
from tests.serve.market_helpers import consumer, provider, work_body


def test_every_201_route_has_a_location_or_a_reason_it_has_none(client: httpx.Client) -> None:
    document = client.get("/schema/openapi.json").json()
    created = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "201" in operation.get("responses", {})
    }
    assert created == set(CREATED_AT) | set(NOT_ADDRESSABLE)
    assert not set(CREATED_AT) & set(NOT_ADDRESSABLE)
    for method, path in CREATED_AT:
        answer = document["paths"][path][method.lower()]["responses"]["201"]
        assert "Location" in answer["headers"], (method, path)


def test_created_resources_are_where_location_says(client: httpx.Client) -> None:
    signed_up = client.post("/v1/tenants", json={"name": "Loc", "type": "BOTH"})
    assert signed_up.status_code == 201
    assert signed_up.headers["location"] == "/v1/tenants/me"
    owner = sign_up(client, "Loc Owner", "PROVIDER")
    key = client.post("/v1/keys", headers=owner.headers)
    assert key.status_code == 201
    assert key.headers["location"] == f"/v1/keys/{key.json()['key_id']}"
    agent = provider(client)
    found = client.get(f"/v1/providers/{agent.provider_id}", headers=agent.owner.headers)
    assert found.status_code == 200
    body = {"provider_id": agent.provider_id, "categories": ["DATA"]}
    subscribed = client.post("/v1/subscriptions", json=body, headers=agent.headers)
    assert subscribed.status_code == 201
    assert subscribed.headers["location"].startswith("/v1/subscriptions/sub")


def test_a_replayed_201_carries_the_same_location(client: httpx.Client) -> None:
    acme = consumer(client, plan="BUSINESS")
    headers = {**acme.headers, "Idempotency-Key": str(uuid.uuid4())}
    first = client.post("/v1/work", json=work_body(), headers=headers)
    again = client.post("/v1/work", json=work_body(), headers=headers)
    assert first.status_code == again.status_code == 201
    work_id = first.json()["work_id"]
    assert first.headers["location"] == again.headers["location"] == f"/v1/work/{work_id}"
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["replayed"] is True
    read = client.get(first.headers["location"], headers=acme.headers)
    assert read.status_code == 200
    assert read.json()["work_id"] == work_id


def test_a_refused_post_has_no_location(client: httpx.Client) -> None:
    acme = consumer(client)
    refused = client.post("/v1/work", json=work_body(title=""), headers=acme.headers)
    assert refused.status_code >= 400
    assert "location" not in refused.headers
