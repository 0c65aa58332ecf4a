"""A2A agent cards over a real server, on both backends: registration by the provider or its
owner only, refusals naming the field with nothing written, search by indexed skill and tag
ranked by reputation, and the exchange's own card at the well-known path."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.serve.conftest import Tenant
from tests.serve.market_helpers import (
    Provider,
    bid,
    close_now,
    complete,
    consumer,
    provider,
    submit_work,
    wait_for_status,
)
from tests.serve.server import Backend, Server


def card(skill_id: str, *, tags: tuple[str, ...] = ("code", "security")) -> dict[str, Any]:
    return {
        "protocolVersion": "0.3.0",
        "name": "CodeReviewBot",
        "description": "Reviews Go and Python code for security issues",
        "url": "https://agents.example.com/a2a/v1",
        "version": "1.2.0",
        "capabilities": {"streaming": True},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["application/json"],
        "skills": [
            {"id": skill_id, "name": "Code review", "tags": list(tags)},
            {"id": f"{skill_id}-audit", "name": "Security audit", "tags": ["audit"]},
        ],
    }


def register(client: httpx.Client, agent: Provider, document: object, headers: Any = None) -> Any:
    return client.put(
        f"/v1/providers/{agent.provider_id}/agent-card",
        json=document,
        headers=headers or agent.headers,
    )


def unique_skill() -> str:
    return f"review-{uuid.uuid4().hex[:10]}"


def test_a_provider_registers_its_card_and_anyone_signed_in_reads_it(
    client: httpx.Client, tenant: Tenant
) -> None:
    agent, skill = provider(client, subscribe=False), unique_skill()
    response = register(client, agent, card(skill))
    assert response.status_code == 200, response.text
    assert response.json()["skills"] == [skill, f"{skill}-audit"]
    found = client.get(f"/v1/providers/{agent.provider_id}/agent-card", headers=tenant.headers)
    assert found.status_code == 200
    assert found.json()["defaultOutputModes"] == ["application/json"]  # kept as sent


def test_the_owner_tenant_may_register_the_card(client: httpx.Client) -> None:
    agent = provider(client, subscribe=False)
    response = register(client, agent, card(unique_skill()), headers=agent.owner.headers)
    assert response.status_code == 200, response.text


def test_another_tenant_cannot_register_a_card_and_learns_nothing(
    client: httpx.Client, other_tenant: Tenant
) -> None:
    agent = provider(client, subscribe=False)
    response = register(client, agent, card(unique_skill()), headers=other_tenant.headers)
    assert response.status_code == 404
    found = client.get(f"/v1/providers/{agent.provider_id}/agent-card", headers=agent.headers)
    assert found.status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"url": "ftp://agents.example.com"}, "url"),
        ({"url": "https://user:pw@agents.example.com"}, "url"),
        ({"skills": []}, "skills"),
        ({"skills": [{"id": "a", "name": "A"}, {"id": "A", "name": "B"}]}, "skills[1].id"),
        ({"skills": [{"id": "a", "name": "A", "tags": ["ok", 3]}]}, "skills[0].tags[1]"),
        ({"skills": [{"id": "a", "name": f"A{i}"} for i in range(65)]}, "skills"),
        ({"version": None}, "version"),
        ({"name": "Bot\u202e"}, "name"),
        ({"skills": [{"id": "a", "name": "A", "tags": ["x\u0000"]}]}, "skills[0].tags[0]"),
    ],
)
def test_a_bad_card_is_refused_naming_the_field_and_nothing_is_written(
    client: httpx.Client, change: dict[str, Any], field: str
) -> None:
    agent, skill = provider(client, subscribe=False), unique_skill()
    response = register(client, agent, {**card(skill), **change})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in response.json()["errors"]] == [field]
    found = client.get(f"/v1/providers/{agent.provider_id}/agent-card", headers=agent.headers)
    assert found.status_code == 404


def test_a_card_nested_too_deep_or_with_a_huge_number_is_refused(client: httpx.Client) -> None:
    agent = provider(client, subscribe=False)
    deep = "[" * 2_000 + "]" * 2_000
    for raw in (f'{{"name": "x", "extra": {deep}}}', '{"name": "x", "extra": 1e999}'):
        response = client.put(
            f"/v1/providers/{agent.provider_id}/agent-card",
            content=raw,
            headers={**agent.headers, "content-type": "application/json"},
        )
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


def test_search_finds_providers_by_skill_and_tag_only(client: httpx.Client) -> None:
    skill, tag = unique_skill(), f"tag-{uuid.uuid4().hex[:8]}"
    first, second, other = (provider(client, subscribe=False) for _ in range(3))
    assert register(client, first, card(skill, tags=(tag, "x"))).status_code == 200
    assert register(client, second, card(skill, tags=("y",))).status_code == 200
    assert register(client, other, card(unique_skill(), tags=(tag,))).status_code == 200

    def found(**params: str) -> set[str]:
        response = client.get("/v1/providers/search", params=params, headers=first.headers)
        assert response.status_code == 200, response.text
        return {hit["provider_id"] for hit in response.json()["results"]}

    assert found(skill=skill.upper()) == {first.provider_id, second.provider_id}
    assert found(tag=tag) == {first.provider_id, other.provider_id}
    assert found(skill=skill, tag=tag) == {first.provider_id}


def test_search_ranks_by_reputation(client: httpx.Client) -> None:
    skill = unique_skill()
    novice, proven = provider(client, subscribe=False), provider(client)
    for agent in (novice, proven):
        assert register(client, agent, card(skill)).status_code == 200
    buyer = consumer(client)
    work = submit_work(client, buyer)
    assert bid(client, proven, work["work_id"]).status_code == 201
    close_now(client, work["work_id"])
    awarded = wait_for_status(client, buyer, work["work_id"], {"AWARDED"})
    assert complete(client, proven, awarded["contract_id"]).status_code == 200
    response = client.get("/v1/providers/search", params={"skill": skill}, headers=buyer.headers)
    ranked = [hit["provider_id"] for hit in response.json()["results"]]
    assert ranked == [proven.provider_id, novice.provider_id]
    scores = [hit["score"] for hit in response.json()["results"]]
    assert scores[0] > scores[1]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "skill"),
        ({"skill": "x", "min_tier": "DIAMOND"}, "min_tier"),
        ({"skill": "x", "limit": "0"}, "limit"),
    ],
)
def test_a_bad_search_is_refused_naming_the_field(
    client: httpx.Client, tenant: Tenant, params: dict[str, str], field: str
) -> None:
    response = client.get("/v1/providers/search", params=params, headers=tenant.headers)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_min_tier_filters_out_lower_tiers(client: httpx.Client, tenant: Tenant) -> None:
    skill = unique_skill()
    assert register(client, provider(client, subscribe=False), card(skill)).status_code == 200
    params = {"skill": skill, "min_tier": "SILVER"}
    response = client.get("/v1/providers/search", params=params, headers=tenant.headers)
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_the_exchange_serves_its_own_agent_card_without_a_credential(
    client: httpx.Client,
) -> None:
    response = client.get("/.well-known/agent-card.json")
    assert response.status_code == 200
    body = response.json()
    assert {skill["id"] for skill in body["skills"]} >= {"post_work", "bid"}
    assert body["url"].endswith("/v1")
    assert body["protocolVersion"]


def test_registering_a_card_publishes_an_event_in_the_same_commit(
    client: httpx.Client, server: Server, backend: Backend
) -> None:
    agent = provider(client, subscribe=False)
    assert register(client, agent, card(unique_skill())).status_code == 200
    with backend.market_db(server.data_dir) as db:
        rows = db.read(
            "SELECT type, payload FROM outbox WHERE subject_id = ? ORDER BY seq",
            (agent.provider_id,),
        )
    types = [row[0] for row in rows]
    assert types.count("provider.agent_card_registered") == 1
