"""Every list is a keyset page (`limit`, `starting_after`, `{data, has_more, next_cursor}`):
GET /v1/work (with its filters), /v1/work/{id}/bids, /v1/work/open (sealed), /v1/transactions
and /v1/notifications/deliveries. A walk sees every row exactly once; a cursor that is not
one of the caller's rows is a 422 naming `starting_after`; nobody else's rows ever show."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from serve.gateway.paging import ID_PATTERN
from tests.serve.conftest import Tenant, sign_up
from tests.serve.market_helpers import (
    Provider,
    bid,
    close_now,
    consumer,
    provider,
    submit_work,
)
from tests.serve.webhook_receiver import Receiver


def _get(client: httpx.Client, path: str, headers: dict[str, str], **params: Any) -> Any:
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _walk_in_pages_of(
    client: httpx.Client, path: str, headers: dict[str, str], size: int, **params: Any
) -> tuple[list[Any], list[dict[str, Any]]]:
    # Every page of `size` rows: the rows walked, and each page's (has_more, next_cursor).
    rows: list[Any] = []
    pages: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, "limit": size} | ({} if cursor is None else {"starting_after": cursor})
        page = _get(client, path, headers, **query)
        pages.append(page)
        rows += page["data"]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return rows, pages
        cursor = page["next_cursor"]
    raise AssertionError("the walk did not end")


def _refused_cursor(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"field": "starting_after", "reason": reason}]


def _category() -> str:
    # A category of the test's own: the shared server holds every other test's work too.
    return f"LIST_{uuid.uuid4().hex[:10].upper()}"


# -- GET /v1/work -----------------------------------------------------------------------------


def test_the_work_list_walks_every_work_once_newest_first_by_cursor(
    client: httpx.Client,
) -> None:
    buyer = consumer(client, plan="BUSINESS")
    ids = [submit_work(client, buyer, bid_window_seconds=300)["work_id"] for _ in range(5)]
    everything = _get(client, "/v1/work", buyer.headers)
    assert sorted(w["work_id"] for w in everything["data"]) == sorted(ids)
    assert (everything["has_more"], everything["next_cursor"]) == (False, None)
    newest_first = [w["work_id"] for w in everything["data"]]
    walked, pages = _walk_in_pages_of(client, "/v1/work", buyer.headers, 2)
    assert [w["work_id"] for w in walked] == newest_first  # each exactly once, in order
    assert [len(p["data"]) for p in pages] == [2, 2, 1]
    assert [p["next_cursor"] for p in pages] == [newest_first[1], newest_first[3], None]
    # Another tenant sees none of it, and cannot page from it.
    stranger = consumer(client)
    assert _get(client, "/v1/work", stranger.headers)["data"] == []
    foreign = client.get("/v1/work", params={"starting_after": ids[0]}, headers=stranger.headers)
    _refused_cursor(foreign, "unknown_work")
    unknown = client.get("/v1/work", params={"starting_after": "work_nope"}, headers=buyer.headers)
    _refused_cursor(unknown, "unknown_work")


def test_the_work_list_filters_by_status_category_and_created_range(
    client: httpx.Client,
) -> None:
    buyer, agent = consumer(client, plan="BUSINESS"), provider(client)
    category = _category()
    first = submit_work(client, buyer, bid_window_seconds=300)
    time.sleep(0.005)
    other = submit_work(client, buyer, bid_window_seconds=300, category=category)
    time.sleep(0.005)
    last = submit_work(client, buyer, bid_window_seconds=300)
    assert bid(client, agent, last["work_id"], 100).status_code == 201
    close_now(client, last["work_id"])  # AWARDED

    def listed(**params: Any) -> list[str]:
        return [w["work_id"] for w in _get(client, "/v1/work", buyer.headers, **params)["data"]]

    assert listed(status="AWARDED") == [last["work_id"]]
    assert listed(status="OPEN") == [other["work_id"], first["work_id"]]
    assert listed(status="CANCELLED") == []
    assert listed(category=category) == [other["work_id"]]
    assert listed(category=category, status="AWARDED") == []
    opened = other["bid_window_opened_at_ms"]
    assert listed(created_after_ms=opened) == [last["work_id"]]
    assert listed(created_before_ms=opened) == [first["work_id"]]
    assert listed(created_after_ms=opened - 1, created_before_ms=opened + 1) == [other["work_id"]]
    # Filters narrow the page, and the walk still pages through what passes.
    walked, _ = _walk_in_pages_of(client, "/v1/work", buyer.headers, 1, status="OPEN")
    assert [w["work_id"] for w in walked] == [other["work_id"], first["work_id"]]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("status", "DONE"),
        ("category", "technology"),
        ("category", "X" * 33),
        ("created_after_ms", "-1"),
        ("created_before_ms", "soon"),
        ("limit", "0"),
        ("limit", "101"),
        ("starting_after", ""),
    ],
)
def test_a_bad_work_filter_is_a_422_naming_it(client: httpx.Client, name: str, value: str) -> None:
    buyer = consumer(client, funds=None)
    refused = client.get("/v1/work", params={name: value}, headers=buyer.headers)
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == [name]


# -- GET /v1/work/{work_id}/bids ------------------------------------------------------------


def test_the_bids_on_a_work_page_by_cursor_for_its_consumer_only(client: httpx.Client) -> None:
    buyer = consumer(client, plan="BUSINESS")
    work_id = submit_work(client, buyer, bid_window_seconds=300)["work_id"]
    other_work = submit_work(client, buyer, bid_window_seconds=300)["work_id"]
    bids = []
    for _ in range(3):
        placed = bid(client, provider(client), work_id, 100)
        assert placed.status_code == 201, placed.text
        bids.append(placed.json()["bid_id"])
    elsewhere = bid(client, provider(client), other_work, 100).json()["bid_id"]
    path = f"/v1/work/{work_id}/bids"
    everything = _get(client, path, buyer.headers)["data"]
    assert sorted(b["bid_id"] for b in everything) == sorted(bids)
    walked, pages = _walk_in_pages_of(client, path, buyer.headers, 2)
    assert [b["bid_id"] for b in walked] == [b["bid_id"] for b in everything]
    assert [p["has_more"] for p in pages] == [True, False]
    # A bid on another work (even the caller's own) is no cursor here.
    crossed = client.get(path, params={"starting_after": elsewhere}, headers=buyer.headers)
    _refused_cursor(crossed, "unknown_bid")
    # Another tenant: the work is not found for it at all.
    stranger = consumer(client, funds=None)
    assert client.get(path, headers=stranger.headers).status_code == 404


# -- GET /v1/work/open --------------------------------------------------------------------


@pytest.fixture
def subscribed(client: httpx.Client) -> tuple[Provider, str]:
    category = _category()
    return provider(client, categories=(category,)), category


def test_a_provider_lists_the_open_work_it_matches_sealed(
    client: httpx.Client, subscribed: tuple[Provider, str]
) -> None:
    agent, category = subscribed
    buyer = consumer(client, plan="BUSINESS")
    matching = [
        submit_work(client, buyer, bid_window_seconds=300, category=category)["work_id"]
        for _ in range(3)
    ]
    unmatched = submit_work(client, buyer, bid_window_seconds=300, category=_category())
    closed = submit_work(client, buyer, bid_window_seconds=300, category=category)["work_id"]
    rival = provider(client, categories=(category,))
    assert bid(client, rival, closed, 90).status_code == 201
    assert bid(client, rival, matching[0], 90).status_code == 201
    close_now(client, closed)  # no longer open: not listed

    response = client.get("/v1/work/open", headers=agent.headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert sorted(w["work_id"] for w in page["data"]) == sorted(matching)
    assert unmatched["work_id"] not in response.text
    # Sealed: what the provider is told of a new work, and nothing else (no consumer, no
    # bids, nobody else's provider id).
    for work in page["data"]:
        assert set(work) == {"work_id", "work", "bid_window_closes_at_ms"}
        assert work["work"]["category"] == category
    assert buyer.tenant_id not in response.text
    assert rival.provider_id not in response.text
    assert "bid_id" not in response.text
    # Pages of two, each work once; the tenant of the provider lists the same for it.
    walked, pages = _walk_in_pages_of(client, "/v1/work/open", agent.headers, 2)
    assert [w["work_id"] for w in walked] == [w["work_id"] for w in page["data"]]
    assert [p["has_more"] for p in pages] == [True, False]
    owner = _get(client, "/v1/work/open", agent.owner.headers, provider_id=agent.provider_id)
    assert owner["data"] == page["data"]
    # A work it does not match is no cursor of its own.
    crossed = client.get(
        "/v1/work/open", params={"starting_after": unmatched["work_id"]}, headers=agent.headers
    )
    _refused_cursor(crossed, "unknown_work")


def test_open_work_matches_the_subscriptions_capabilities_too(client: httpx.Client) -> None:
    category = _category()
    owner = sign_up(client, "Capable", "PROVIDER")
    body = {"name": "Bot", "type": "AI_AGENT", "capabilities": ["code_review"], "category": "X"}
    created = client.post("/v1/providers", json=body, headers=owner.headers).json()
    key = {"X-API-Key": created["api_key"]}
    subscription = {
        "provider_id": created["provider_id"],
        "categories": [f"{category[:6]}*"],
        "capabilities": ["code.*"],
    }
    answer = client.post("/v1/subscriptions", json=subscription, headers=key)
    assert answer.status_code == 201, answer.text
    buyer = consumer(client, plan="BUSINESS")
    reviewed = submit_work(client, buyer, category=category, capability="code.review")
    drawn = submit_work(client, buyer, category=category, capability="design.logo")
    any_capability = submit_work(client, buyer, category=category)
    listed = [w["work_id"] for w in _get(client, "/v1/work/open", key)["data"]]
    assert reviewed["work_id"] in listed
    assert any_capability["work_id"] in listed  # names no capability: its category decides
    assert drawn["work_id"] not in listed


def test_open_work_is_listed_only_for_a_provider_the_caller_acts_for(
    client: httpx.Client, subscribed: tuple[Provider, str]
) -> None:
    agent, category = subscribed
    submit_work(client, consumer(client), bid_window_seconds=300, category=category)
    other = provider(client, categories=(category,))
    for headers, provider_id in (
        (other.headers, agent.provider_id),  # another provider's key
        (other.owner.headers, agent.provider_id),  # another tenant's provider
        (agent.owner.headers, "prov_unknown"),  # no such provider: the same answer
    ):
        refused = client.get("/v1/work/open", params={"provider_id": provider_id}, headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["errors"] == [{"field": "provider_id", "reason": "not_the_caller"}]
    named = client.get("/v1/work/open", headers=agent.owner.headers)
    assert named.status_code == 422, named.text
    assert named.json()["errors"] == [{"field": "provider_id", "reason": "required"}]
    # A provider subscribed to nothing of it sees nothing.
    elsewhere = provider(client, categories=(_category(),))
    assert _get(client, "/v1/work/open", elsewhere.headers)["data"] == []


# -- GET /v1/transactions -----------------------------------------------------------------


def test_transactions_page_by_entry_id_per_currency_and_tenant(client: httpx.Client) -> None:
    tenant = consumer(client, funds=None)
    for amount in ("1.00", "2.00", "3.00", "4.00", "5.00"):
        body = {"tenant_id": tenant.tenant_id, "amount": amount, "currency": "USD"}
        assert client.post("/v1/deposits", json=body, headers=tenant.headers).status_code == 201
    eur = {"tenant_id": tenant.tenant_id, "amount": "9.00", "currency": "EUR"}
    assert client.post("/v1/deposits", json=eur, headers=tenant.headers).status_code == 201
    walked, pages = _walk_in_pages_of(client, "/v1/transactions", tenant.headers, 2)
    assert [t["available_change"] for t in walked] == ["5.00", "4.00", "3.00", "2.00", "1.00"]
    assert [p["next_cursor"] for p in pages] == [walked[1]["entry_id"], walked[3]["entry_id"], None]
    in_euros = _get(client, "/v1/transactions", tenant.headers, currency="EUR")
    assert [t["available_change"] for t in in_euros["data"]] == ["9.00"]
    # A USD entry is no cursor of the EUR wallet; another tenant's entry none of ours.
    crossed = client.get(
        "/v1/transactions",
        params={"currency": "EUR", "starting_after": walked[0]["entry_id"]},
        headers=tenant.headers,
    )
    _refused_cursor(crossed, "unknown_entry")
    stranger = consumer(client, funds=None)
    assert _get(client, "/v1/transactions", stranger.headers)["data"] == []
    foreign = client.get(
        "/v1/transactions",
        params={"starting_after": walked[0]["entry_id"]},
        headers=stranger.headers,
    )
    _refused_cursor(foreign, "unknown_entry")


# -- GET /v1/notifications/deliveries ---------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(failures=0)
    yield running
    running.stop()


def _hooked_provider(client: httpx.Client, receiver: Receiver, category: str) -> dict[str, str]:
    owner: Tenant = sign_up(client, "Hooked", "PROVIDER")
    body = {
        "name": "HookBot",
        "type": "AI_AGENT",
        "capabilities": ["code_review"],
        "category": "TECHNOLOGY",
        "endpoint": receiver.url,
    }
    created = client.post("/v1/providers", json=body, headers=owner.headers).json()
    key = {"X-API-Key": created["api_key"]}
    subscription = {"provider_id": created["provider_id"], "categories": [category]}
    assert client.post("/v1/subscriptions", json=subscription, headers=key).status_code == 201
    return key


def test_webhook_deliveries_page_newest_event_first_for_their_provider_only(
    client: httpx.Client, receiver: Receiver
) -> None:
    category = _category()
    key = _hooked_provider(client, receiver, category)
    buyer = consumer(client, plan="BUSINESS")
    for _ in range(3):
        submit_work(client, buyer, bid_window_seconds=300, category=category)
    deadline = time.monotonic() + 15
    while len(_get(client, "/v1/notifications/deliveries", key)["data"]) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    everything = _get(client, "/v1/notifications/deliveries", key)["data"]
    walked, pages = _walk_in_pages_of(client, "/v1/notifications/deliveries", key, 2)
    assert [d["event_id"] for d in walked] == [d["event_id"] for d in everything]
    assert len({d["event_id"] for d in walked}) == 3
    assert [p["has_more"] for p in pages] == [True, False]
    # Another provider's delivery is no cursor of this one.
    other = _hooked_provider(client, receiver, _category())
    crossed = client.get(
        "/v1/notifications/deliveries",
        params={"starting_after": walked[0]["event_id"]},
        headers=other,
    )
    _refused_cursor(crossed, "unknown_delivery")
    assert _get(client, "/v1/notifications/deliveries", other)["data"] == []


# -- ids that name nothing ----------------------------------------------------------------


@pytest.mark.parametrize("param", ["provider_id", "starting_after"])
def test_an_id_no_row_can_have_is_refused_not_an_error(
    client: httpx.Client, subscribed: tuple[Provider, str], param: str
) -> None:
    # PostgreSQL text cannot hold NUL: such an id must be refused before it reaches the
    # database (make fuzz found a 500 on GET /v1/work/open on PostgreSQL).
    agent, _ = subscribed
    params = {"provider_id": agent.provider_id, param: "a\x00b"}
    answer = client.get("/v1/work/open", params=params, headers=agent.headers)
    assert answer.status_code in {403, 422}, answer.text
    assert answer.json()["errors"][0]["field"] == param


def test_every_list_declares_the_one_cursor_shape(client: httpx.Client) -> None:
    # serve/gateway/paging.py: every `starting_after` is an id of the minted shape (or the
    # ledger's integer entry id), refused as a 422 before any query when it is not.
    document = client.get("/schema/openapi.json").json()
    cursors = {
        path: parameter["schema"]
        for path, operations in document["paths"].items()
        for parameter in operations.get("get", {}).get("parameters", [])
        if parameter["name"] == "starting_after"
    }
    assert len(cursors) >= 12, sorted(cursors)
    for path, schema in cursors.items():
        types = {shape.get("type") for shape in schema.get("oneOf", [schema])} - {"null"}
        assert schema.get("pattern") == ID_PATTERN or types == {"integer"}, (path, schema)


def test_a_transactions_cursor_beyond_int64_is_refused(client: httpx.Client) -> None:
    tenant = consumer(client, funds=None)
    answer = client.get(
        "/v1/transactions", params={"starting_after": 2**63}, headers=tenant.headers
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "starting_after"
