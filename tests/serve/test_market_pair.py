"""The pair harness (STYLE.md 20): one auction through a real server and through the core
directly (serve.market.evaluation.evaluate → aex.core.scoring.score_bids), with the same outcome."""

from __future__ import annotations

from decimal import Decimal

import httpx

from aex.core.durations import parse_duration
from aex.core.scoring import PRESETS
from serve.market.evaluation import BidRow, WorkTerms, evaluate
from tests.serve.market_helpers import bid, close_now, consumer, provider, submit_work


def test_the_server_s_evaluation_equals_the_core_s_on_the_same_bids(client: httpx.Client) -> None:
    acme = consumer(client)
    agents = [provider(client) for _ in range(4)]
    work = submit_work(client, acme, sla={"max_turnaround": "3h", "hard_limit": "5h"})
    offers = [
        (agents[0], "120", {"sample_work": {"diff": "+1"}}),
        (agents[1], "80.25", {"confidence": 0.6}),
        (agents[2], "199.99", {"estimated_duration": "1h", "sla": {"max_turnaround": "6h"}}),
        (agents[3], "50", {"confidence": 0.99, "sla": {"max_turnaround": "2h"}}),
    ]
    for agent, price, changes in offers:
        assert bid(client, agent, work["work_id"], price, **changes).status_code == 201
    close_now(client, work["work_id"])
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
                price_minor=int(Decimal(str(body["price"])) * 100),
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
        required_turnaround_ms=3 * 3_600_000,
        hard_limit_turnaround_ms=5 * 3_600_000,
        window_opens_ms=work["bid_window_opened_at_ms"],
        window_closes_ms=work["bid_window_closes_at_ms"],
    )
    direct = evaluate(
        terms, rows, now_ms=evaluation["evaluated_at_ms"], weights=PRESETS["balanced"]
    )
    served = evaluation["bids"]
    assert [r.bid_id for r in direct] == [r["bid_id"] for r in served]
    for core, http in zip(direct, served, strict=True):
        assert (core.rank, core.is_winner, core.reject_reason) == (
            http["rank"],
            http["is_winner"],
            http["reject_reason"],
        )
        assert abs(core.total - http["total"]) < 1e-5
    by_provider = {r["provider_id"]: r for r in served}
    assert by_provider[agents[2].provider_id]["reject_reason"] is not None  # over the hard limit
