"""The spec's consumer workflow over real HTTP, with the money checked to the cent."""

from __future__ import annotations

from decimal import Decimal

import httpx

from aex.core.fees import PLATFORM_FEE_BPS, split_fee
from tests.serve.market_helpers import (
    OPERATOR,
    balance,
    bid,
    close_now,
    complete,
    consumer,
    platform_revenue,
    provider,
    submit_work,
    work_body,
)
from tests.serve.server import Backend, Server


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
    assert (settled.json()["platform_fee"], settled.json()["provider_payout"]) == ("15.00", "85.00")
    # The consumer is charged (the price stays in escrow through the 72 h dispute window); the
    # provider is credited when the window ends (tests/serve/test_market_money.py drives it).
    assert balance(client, acme) == ("9900.00", "100.00")
    assert balance(client, bot.owner) == ("0.00", "0.00")
    assert Decimal(platform_revenue(client)) == revenue_before
    client.post(f"/v1/contracts/{contract_id}/dispute", json={}, headers=acme.headers)
    resolved = client.post(
        f"/v1/admin/contracts/{contract_id}/resolve",
        json={"resolution": "pay_out"},
        headers=OPERATOR,
    )
    assert resolved.status_code == 200, resolved.text
    assert balance(client, acme) == ("9900.00", "0.00")
    assert balance(client, bot.owner) == ("85.00", "0.00")
    assert Decimal(platform_revenue(client)) - revenue_before == Decimal("15.00")


def test_underfunded_work_is_refused_with_the_ledger_problem_and_nothing_written(
    client: httpx.Client,
) -> None:
    poor = consumer(client, funds="150")
    response = client.post("/v1/work", json=work_body(), headers=poor.headers)
    assert response.status_code == 422, response.text  # the ledger reason's own hint
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("ledger-insufficient-funds")
    assert balance(client, poor) == ("150.00", "0.00")
    assert client.get("/v1/work", headers=poor.headers).json()["data"] == []


def test_cancel_while_open_releases_the_hold_and_later_cancels_are_refused(
    client: httpx.Client,
) -> None:
    acme = consumer(client)
    work = submit_work(client, acme, bid_window_seconds=300)
    cancelled = client.post(f"/v1/work/{work['work_id']}/cancel", headers=acme.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELLED"
    assert balance(client, acme) == ("10000.00", "0.00")
    again = client.post(f"/v1/work/{work['work_id']}/cancel", headers=acme.headers)
    assert again.status_code == 409
    listed = client.get("/v1/work", headers=acme.headers).json()["data"]
    assert [w["work_id"] for w in listed] == [work["work_id"]]


def test_failed_criteria_release_the_escrow_and_charge_nothing(client: httpx.Client) -> None:
    acme, bot = consumer(client), provider(client)
    work = submit_work(client, acme)
    assert bid(client, bot, work["work_id"], 100).status_code == 201
    contract_id = close_now(client, work["work_id"])["contract_id"]
    failed = complete(client, bot, contract_id, coverage=0.5)
    assert failed.status_code == 200, failed.text
    assert failed.json()["status"] == "FAILED"
    assert failed.json()["criteria"]["success"] is False
    assert balance(client, acme) == ("10000.00", "0.00")
    assert balance(client, bot.owner) == ("0.00", "0.00")
    assert complete(client, bot, contract_id).status_code == 409  # no completing a failed one


def test_no_bid_leaves_the_work_unfilled_with_the_hold_released(client: httpx.Client) -> None:
    acme = consumer(client)
    work = submit_work(client, acme)
    assert close_now(client, work["work_id"])["status"] == "UNFILLED"
    assert balance(client, acme) == ("10000.00", "0.00")
    evaluation = client.get(f"/v1/work/{work['work_id']}/evaluation", headers=acme.headers)
    assert evaluation.json()["bids"] == []


def test_the_evaluation_ranks_every_bid_and_names_rejections(client: httpx.Client) -> None:
    acme, cheap, dear, over = consumer(client), provider(client), provider(client), provider(client)
    work = submit_work(client, acme)
    assert bid(client, cheap, work["work_id"], 60, sample_work={"diff": "..."}).status_code == 201
    assert bid(client, dear, work["work_id"], "150.50", confidence=0.5).status_code == 201
    assert bid(client, over, work["work_id"], 250).status_code == 201
    assert (
        client.get(f"/v1/work/{work['work_id']}/evaluation", headers=acme.headers).status_code
        == 409
    )
    close_now(client, work["work_id"])
    evaluation = client.get(f"/v1/work/{work['work_id']}/evaluation", headers=acme.headers).json()
    by_provider = {row["provider_id"]: row for row in evaluation["bids"]}
    assert by_provider[cheap.provider_id]["rank"] == 1
    assert by_provider[cheap.provider_id]["is_winner"] is True
    assert by_provider[dear.provider_id]["rank"] == 2
    assert by_provider[over.provider_id]["reject_reason"] is not None
    assert by_provider[over.provider_id]["rank"] == 0
    assert set(by_provider[cheap.provider_id]["components"]) >= {"price", "trust", "confidence"}


def test_a_dispute_refunded_by_the_operator_returns_the_money(client: httpx.Client) -> None:
    acme, bot = consumer(client), provider(client)
    revenue_before = Decimal(platform_revenue(client))
    work = submit_work(client, acme)
    bid(client, bot, work["work_id"], 100)
    contract_id = close_now(client, work["work_id"])["contract_id"]
    assert complete(client, bot, contract_id).status_code == 200
    disputed = client.post(
        f"/v1/contracts/{contract_id}/dispute", json={"reason": "wrong repo"}, headers=acme.headers
    )
    assert disputed.status_code == 200, disputed.text
    assert disputed.json()["status"] == "DISPUTED"
    again = client.post(f"/v1/contracts/{contract_id}/dispute", json={}, headers=acme.headers)
    assert again.status_code == 409
    resolved = client.post(
        f"/v1/admin/contracts/{contract_id}/resolve",
        json={"resolution": "refund"},
        headers=OPERATOR,
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "REFUNDED"
    assert balance(client, acme) == ("10000.00", "0.00")
    assert balance(client, bot.owner) == ("0.00", "0.00")
    assert Decimal(platform_revenue(client)) == revenue_before
    reputation = client.get(f"/v1/providers/{bot.provider_id}/reputation", headers=acme.headers)
    assert reputation.json()["contracts"] == 1
    assert reputation.json()["success_rate"] == 0.0


def test_a_dispute_paid_out_keeps_the_settlement(client: httpx.Client) -> None:
    acme, bot = consumer(client), provider(client)
    work = submit_work(client, acme)
    bid(client, bot, work["work_id"], 100)
    contract_id = close_now(client, work["work_id"])["contract_id"]
    complete(client, bot, contract_id)
    client.post(f"/v1/contracts/{contract_id}/dispute", json={}, headers=acme.headers)
    resolved = client.post(
        f"/v1/admin/contracts/{contract_id}/resolve",
        json={"resolution": "pay_out"},
        headers=OPERATOR,
    )
    assert resolved.json()["status"] == "SETTLED"
    assert balance(client, bot.owner) == ("85.00", "0.00")
    assert balance(client, acme) == ("9900.00", "0.00")


def test_after_every_market_workflow_the_ledger_balances_and_escrow_matches_contracts(
    server: Server, backend: Backend, client: httpx.Client
) -> None:
    # Runs after this module's workflows (and any others in the session) on the same database.
    with backend.ledger(server.data_dir) as ledger:
        assert set(ledger.totals_by_currency().values()) <= {0}
        assert ledger.wallet_mismatches() == []
    with backend.market_db(server.data_dir) as db:
        # One statement, one snapshot (the closer may run meanwhile): every open hold belongs
        # to an OPEN work, to an AWARDED/EXECUTING contract or to a settled or disputed one not
        # paid out yet (its dispute window is open), and back.
        rows = db.read(
            "SELECT 'held', hold_id, amount_minor FROM holds WHERE state = 'open'"
            " UNION ALL SELECT 'work', hold_id, budget_max_minor FROM work WHERE state = 'OPEN'"
            " UNION ALL SELECT 'contract', hold_id, price_minor FROM contracts"
            " WHERE state IN ('AWARDED', 'EXECUTING')"
            " OR (state IN ('SETTLED', 'DISPUTED') AND paid_out_at_ms IS NULL)"
        )
        settled = db.read("SELECT price_minor, fee_minor FROM contracts WHERE state = 'SETTLED'")
    held = {hold_id: amount for tag, hold_id, amount in rows if tag == "held"}
    expected = {hold_id: amount for tag, hold_id, amount in rows if tag != "held"}
    assert held == expected
    assert settled
    for price_minor, fee_minor in settled:
        assert fee_minor == split_fee(price_minor, fee_bps=PLATFORM_FEE_BPS)[0]
