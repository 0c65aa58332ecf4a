"""The spec's consumer workflow over real HTTP, with the money checked to the cent."""

from __future__ import annotations

from decimal import Decimal

import httpx

from tests.serve.market_helpers import (
    balance,
    bid,
    close_now,
    complete,
    consumer,
    platform_revenue,
    provider,
    submit_work,
)


def test_a_settled_contract_moves_exactly_100_85_15(client: httpx.Client) -> None:
    acme, bot, rival = consumer(client), provider(client), provider(client)
    revenue_before = Decimal(platform_revenue(client))
    work = submit_work(client, acme)
    assert work["status"] == "OPEN"
    assert balance(client, acme) == ("9800.00", "200.00")  # the budget max is held
    assert bid(client, bot, work["work_id"], 100).status_code == 201
    assert bid(client, rival, work["work_id"], 190, confidence=0.2).status_code == 201
    closed = close_now(client, work["work_id"])
    assert closed["status"] == "AWARDED"
    assert balance(client, acme) == ("9900.00", "100.00")  # the price is in escrow
    contract_id = closed["contract_id"]
    contract = client.get(f"/v1/contracts/{contract_id}", headers=bot.headers).json()
    assert contract["provider_id"] == bot.provider_id
    assert contract["status"] == "AWARDED"
    settled = complete(client, bot, contract_id)
    assert settled.status_code == 200, settled.text
    assert settled.json()["status"] == "SETTLED"
    assert balance(client, acme) == ("9900.00", "0.00")
    assert balance(client, bot.owner) == ("85.00", "0.00")
    assert Decimal(platform_revenue(client)) - revenue_before == Decimal("15.00")
