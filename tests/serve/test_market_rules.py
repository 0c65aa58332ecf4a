"""Who may bid, when, and who may read what: the market's guards over real HTTP."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.serve.market_helpers import (
    OPERATOR,
    balance,
    bid,
    close_now,
    complete,
    consumer,
    provider,
    submit_work,
    wait_for_status,
)


def test_bid_after_close_is_refused(client: httpx.Client) -> None:
    acme, bot, late = consumer(client), provider(client), provider(client)
    work = submit_work(client, acme)
    bid(client, bot, work["work_id"])
    close_now(client, work["work_id"])
    refused = bid(client, late, work["work_id"])
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("bid-work-not-open")


def test_unsubscribed_provider_cannot_bid(client: httpx.Client) -> None:
    acme = consumer(client)
    outsider = provider(client, subscribe=False)
    elsewhere = provider(client, categories=("FINANCE",))
    work = submit_work(client, acme, bid_window_seconds=300)
    for agent in (outsider, elsewhere):
        refused = bid(client, agent, work["work_id"])
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith("bid-provider-not-subscribed")


def test_suspended_provider_cannot_bid_and_its_earlier_bid_is_ineligible(
    client: httpx.Client,
) -> None:
    acme, bot, honest = consumer(client), provider(client), provider(client)
    work = submit_work(client, acme)
    assert bid(client, bot, work["work_id"], 60).status_code == 201
    assert bid(client, honest, work["work_id"], 150).status_code == 201
    suspended = client.post(f"/v1/admin/tenants/{bot.owner.tenant_id}/suspend", headers=OPERATOR)
    assert suspended.status_code == 200, suspended.text
    again = bid(client, bot, work["work_id"], 55)
    assert again.status_code == 403
    closed = close_now(client, work["work_id"])
    contract = client.get(f"/v1/contracts/{closed['contract_id']}", headers=acme.headers).json()
    assert contract["provider_id"] == honest.provider_id
    evaluation = client.get(f"/v1/work/{work['work_id']}/evaluation", headers=acme.headers)
    rejected = [r for r in evaluation.json()["bids"] if r["provider_id"] == bot.provider_id]
    assert rejected[0]["reject_reason"] == "provider_not_eligible"


def test_bids_are_sealed_once_per_provider_and_strictly_parsed(client: httpx.Client) -> None:
    acme, bot = consumer(client), provider(client)
    work = submit_work(client, acme, bid_window_seconds=300)
    assert bid(client, bot, work["work_id"]).status_code == 201
    assert bid(client, bot, work["work_id"]).status_code == 409
    other = provider(client)
    for changes in (
        {"estimated_duration": "2 h"},
        {"sla": {"max_turnaround": "1h"}},
        {"price": 0},
        {"confidence": 1.5},
    ):
        refused = bid(client, other, work["work_id"], **changes)  # type: ignore[arg-type]
        assert refused.status_code == 422, (changes, refused.text)
    not_mine = bid(client, other, work["work_id"], provider_id=bot.provider_id)
    assert not_mine.status_code == 403


def test_one_consumer_cannot_read_another_s_work_bids_evaluation_or_contract(
    client: httpx.Client,
) -> None:
    acme, rival, bot, stranger = (
        consumer(client),
        consumer(client),
        provider(client),
        provider(client),
    )
    work = submit_work(client, acme)
    bid(client, bot, work["work_id"])
    contract_id = close_now(client, work["work_id"])["contract_id"]
    work_id = work["work_id"]
    for path in (
        f"/v1/work/{work_id}",
        f"/v1/work/{work_id}/bids",
        f"/v1/work/{work_id}/evaluation",
        f"/v1/contracts/{contract_id}",
    ):
        assert client.get(path, headers=rival.headers).status_code == 404, path
    assert client.get(f"/v1/work/{work_id}/evaluation", headers=bot.headers).status_code == 403
    assert client.get(f"/v1/contracts/{contract_id}", headers=stranger.headers).status_code == 404
    assert client.get(f"/v1/work/{work_id}/bids", headers=acme.headers).status_code == 200
    assert complete(client, stranger, contract_id).status_code == 404


def test_concurrent_completion_calls_settle_exactly_once(client: httpx.Client) -> None:
    acme, bot = consumer(client), provider(client)
    work = submit_work(client, acme)
    bid(client, bot, work["work_id"], 100)
    contract_id = close_now(client, work["work_id"])["contract_id"]
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(
            pool.map(lambda _: complete(client, bot, contract_id).status_code, range(8))
        )
    assert statuses == [200] + [409] * 7
    # settled once: the price charged once, in escrow through the dispute window
    assert balance(client, bot.owner) == ("0.00", "0.00")
    assert balance(client, acme) == ("9900.00", "100.00")


def test_a_window_closes_by_itself_at_its_end(client: httpx.Client) -> None:
    acme, bot = consumer(client), provider(client)
    work = submit_work(client, acme, bid_window_seconds=5)
    bid(client, bot, work["work_id"])
    assert (
        client.get(f"/v1/work/{work['work_id']}", headers=acme.headers).json()["status"] == "OPEN"
    )
    awarded = wait_for_status(client, acme, work["work_id"], {"AWARDED"})
    assert awarded["closed_at_ms"] >= awarded["bid_window_closes_at_ms"]
    assert awarded["closed_at_ms"] - awarded["bid_window_closes_at_ms"] < 2_000
    assert close_now(client, work["work_id"])["contract_id"] == awarded["contract_id"]


def test_a_provider_s_tier_rises_after_ten_successful_contracts(client: httpx.Client) -> None:
    acme, bot = consumer(client), provider(client)
    started = time.monotonic()
    for _ in range(10):
        work = submit_work(client, acme, budget={"min": 5, "max": 20, "currency": "USD"})
        assert bid(client, bot, work["work_id"], 10).status_code == 201
        contract_id = close_now(client, work["work_id"])["contract_id"]
        assert complete(client, bot, contract_id).status_code == 200
        reputation = client.get(f"/v1/providers/{bot.provider_id}/reputation", headers=acme.headers)
        if reputation.json()["contracts"] < 10:
            assert reputation.json()["tier"] == "BRONZE"
    assert reputation.json()["tier"] == "SILVER"
    assert reputation.json()["success_rate"] == 1.0
    assert time.monotonic() - started < 30
