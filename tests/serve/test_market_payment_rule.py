"""The payment rule at the window's close, over real HTTP, on both backends: under a rules file
with "payment_rule": "second_score" the award holds, contracts, settles and takes the fee at the
core's contract price (aex/core/payment_rule.py), never above the budget; the default exchange
(first score, the spec) pays the bid and publishes the evaluation document it always did."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from aex.core.durations import parse_duration
from aex.core.fees import PLATFORM_FEE_BPS, split_fee
from aex.core.payment_rule import SECOND_SCORE
from aex.core.scoring import PRESETS, weights_to_json
from serve.market.evaluation import BidRow, WorkTerms, evaluate
from serve.settings import ImproperlyConfiguredError, load_weights
from tests.serve.conftest import Tenant
from tests.serve.market_helpers import (
    balance,
    bid,
    close_now,
    complete,
    consumer,
    provider,
    submit_work,
)
from tests.serve.server import Backend, Server


def _cents(amount: object) -> int:
    return int(Decimal(str(amount)) * 100)


def _dollars(minor: int) -> str:
    return f"{Decimal(minor).scaleb(-2):.2f}"


@pytest.fixture
def second_score(tmp_path: Path, own_backend: Backend) -> Iterator[httpx.Client]:
    path = tmp_path / "rules.json"
    document = {
        **weights_to_json(PRESETS["balanced"], name="vickrey"),
        "payment_rule": "second_score",
    }
    path.write_text(json.dumps(document))
    server = Server(tmp_path / "data", env=own_backend.env, args=("--weights", str(path))).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield client
    finally:
        server.stop()


def test_a_rules_file_selects_the_payment_rule_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    base = weights_to_json(PRESETS["balanced"])
    path.write_text(json.dumps({**base, "payment_rule": "second_score"}))
    assert load_weights(str(path)).payment_rule is SECOND_SCORE
    path.write_text(json.dumps({**base, "payment_rule": "pay_as_you_like"}))
    with pytest.raises(ImproperlyConfiguredError, match=r"\(payment_rule\)"):
        load_weights(str(path))


def core_contract_price(client: httpx.Client, acme: Tenant, work: dict[str, Any]) -> int:
    """The core's contract price for the work's stored bids (the pair harness's rebuild)."""
    headers = acme.headers
    evaluation = client.get(f"/v1/work/{work['work_id']}/evaluation", headers=headers).json()
    stored = client.get(f"/v1/work/{work['work_id']}/bids", headers=headers).json()["data"]
    rows = []
    for entry in stored:
        reputation = client.get(
            f"/v1/providers/{entry['provider_id']}/reputation", headers=headers
        ).json()
        body = entry["bid"]
        rows.append(
            BidRow(
                bid_id=entry["bid_id"],
                provider_id=entry["provider_id"],
                price_minor=_cents(body["price"]),
                confidence=float(body["confidence"]),
                has_sample="sample_work" in body,
                turnaround_ms=int(parse_duration(body["sla"]["max_turnaround"])),
                submitted_at_ms=entry["submitted_at_ms"],
                trust=reputation["score"],
                tier=0,
                certified_matches=0,
                eligible=True,
            )
        )
    terms = WorkTerms(
        budget_min_minor=5_000,
        budget_max_minor=20_000,
        required_turnaround_ms=0,
        hard_limit_turnaround_ms=0,
        window_opens_ms=work["bid_window_opened_at_ms"],
        window_closes_ms=work["bid_window_closes_at_ms"],
    )
    direct = evaluate(
        terms,
        rows,
        now_ms=evaluation["evaluated_at_ms"],
        weights=PRESETS["balanced"],
        payment_rule=SECOND_SCORE,
    )
    winner = next(row for row in direct if row.is_winner)
    assert winner.contract_price_minor is not None
    return winner.contract_price_minor


def test_second_score_holds_contracts_and_settles_at_the_cores_contract_price(
    second_score: httpx.Client,
) -> None:
    client = second_score
    acme, cheap, dear = consumer(client), provider(client), provider(client)
    work = submit_work(client, acme)
    assert bid(client, cheap, work["work_id"], "100", confidence=0.9).status_code == 201
    assert bid(client, dear, work["work_id"], "150", confidence=0.8).status_code == 201
    contract_id = close_now(client, work["work_id"])["contract_id"]
    price_minor = core_contract_price(client, acme, work)
    # the cheaper bid wins and is paid up to where its score would meet the runner-up's
    assert 10_000 < price_minor <= 20_000
    evaluation = client.get(f"/v1/work/{work['work_id']}/evaluation", headers=acme.headers).json()
    assert evaluation["payment_rule"] == "second_score"
    assert evaluation["contract_price"] == {"amount": _dollars(price_minor), "currency": "USD"}
    winner = next(row for row in evaluation["bids"] if row["is_winner"])
    assert winner["provider_id"] == cheap.provider_id
    contract = client.get(f"/v1/contracts/{contract_id}", headers=acme.headers).json()
    assert contract["price"] == _dollars(price_minor)
    bids = client.get(f"/v1/work/{work['work_id']}/bids", headers=acme.headers).json()["data"]
    assert sorted(_cents(b["bid"]["price"]) for b in bids) == [10_000, 15_000]  # bids keep theirs
    # the escrow is the contract price (the budget hold of 200.00 released)
    assert balance(client, acme) == (_dollars(1_000_000 - price_minor), _dollars(price_minor))
    settled = complete(client, cheap, contract_id)
    assert settled.status_code == 200, settled.text
    contract = client.get(f"/v1/contracts/{contract_id}", headers=acme.headers).json()
    fee_minor, payout_minor = split_fee(price_minor, fee_bps=PLATFORM_FEE_BPS)
    assert contract["status"] == "SETTLED"
    assert (contract["platform_fee"], contract["provider_payout"]) == (
        _dollars(fee_minor),
        _dollars(payout_minor),
    )


def test_second_score_pays_a_lone_bid_the_budget_max_and_holds_no_more(
    second_score: httpx.Client,
) -> None:
    client = second_score
    acme, only = consumer(client), provider(client)
    work = submit_work(client, acme)
    assert bid(client, only, work["work_id"], "80").status_code == 201
    contract_id = close_now(client, work["work_id"])["contract_id"]
    assert core_contract_price(client, acme, work) == 20_000
    contract = client.get(f"/v1/contracts/{contract_id}", headers=acme.headers).json()
    assert contract["price"] == "200.00"
    assert balance(client, acme) == ("9800.00", "200.00")  # exactly the budget, never more


def test_the_default_exchange_pays_the_bid_and_publishes_the_same_evaluation(
    client: httpx.Client,
) -> None:
    acme, cheap, dear = consumer(client), provider(client), provider(client)
    work = submit_work(client, acme)
    assert bid(client, cheap, work["work_id"], "100", confidence=0.9).status_code == 201
    assert bid(client, dear, work["work_id"], "150", confidence=0.8).status_code == 201
    contract_id = close_now(client, work["work_id"])["contract_id"]
    evaluation = client.get(f"/v1/work/{work['work_id']}/evaluation", headers=acme.headers).json()
    assert set(evaluation) == {"work_id", "evaluated_at_ms", "weights", "bids"}
    contract = client.get(f"/v1/contracts/{contract_id}", headers=acme.headers).json()
    assert contract["price"] == "100.00"
    assert balance(client, acme) == ("9900.00", "100.00")


def test_the_second_score_evaluation_matches_the_published_schema(
    second_score: httpx.Client,
) -> None:
    import jsonschema

    client = second_score
    acme, cheap, dear = consumer(client), provider(client), provider(client)
    work = submit_work(client, acme)
    assert bid(client, cheap, work["work_id"], "100", confidence=0.9).status_code == 201
    assert bid(client, dear, work["work_id"], "150", confidence=0.8).status_code == 201
    close_now(client, work["work_id"])
    evaluation = client.get(f"/v1/work/{work['work_id']}/evaluation", headers=acme.headers).json()
    document = client.get("/schema/openapi.json").json()
    published = document["components"]["schemas"]["Evaluation"]["properties"]
    assert {"payment_rule", "contract_price"} <= set(published)
    schema = {"$ref": "#/components/schemas/Evaluation", "components": document["components"]}
    jsonschema.Draft202012Validator(schema).validate(evaluation)
    wrong = {**evaluation, "contract_price": {"amount": 1.5, "currency": "USD"}}
    with pytest.raises(jsonschema.ValidationError):  # the check can fail: a float amount
        jsonschema.Draft202012Validator(schema).validate(wrong)
