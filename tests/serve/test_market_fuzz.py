"""Invariant: any request body, to any market write route, answers 2xx or a 4xx problem+json,
never a 5xx (STYLE.md 20's fuzz test, over the market's routes)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serve.market_helpers import OPERATOR, bid, close_now, consumer, provider, submit_work
from tests.serve.test_fuzz_bodies import JSON_OR_SPLICE as JSON
from tests.serve.test_fuzz_bodies import splice

FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "title": JSON,
        "category": st.sampled_from(["TECHNOLOGY", "technology", ""]) | JSON,
        "budget": st.fixed_dictionaries(
            {"min": JSON, "max": st.decimals(allow_nan=False).map(str) | JSON, "currency": JSON}
        )
        | JSON,
        "success_criteria": JSON,
        "bid_window_seconds": st.integers(-10, 400) | JSON,
        "work_id": JSON,
        "provider_id": JSON,
        "price": st.decimals(allow_nan=False).map(str) | JSON,
        "confidence": JSON,
        "estimated_duration": st.sampled_from(["2h", "2 h", "0h", ""]) | JSON,
        "sla": JSON,
        "results": JSON,
        "metrics": st.dictionaries(st.text(max_size=8), JSON, max_size=3) | JSON,
        "certificate_id": JSON,
        "reason": JSON,
        "resolution": st.sampled_from(["refund", "pay_out"]) | JSON,
        "percent": JSON,
    },
)


@pytest.fixture(scope="module")
def market(client: httpx.Client) -> dict[str, Any]:
    acme, bot = consumer(client, plan="PROFESSIONAL"), provider(client)  # two tasks at once
    work = submit_work(client, acme, bid_window_seconds=300)
    awarded = submit_work(client, acme)
    assert bid(client, bot, awarded["work_id"]).status_code == 201
    contract_id = close_now(client, awarded["work_id"])["contract_id"]
    return {
        "routes": [
            ("/v1/work", acme.headers),
            ("/v1/bids", bot.headers),
            (f"/v1/contracts/{contract_id}/progress", bot.headers),
            (f"/v1/contracts/{contract_id}/complete", bot.headers),
            (f"/v1/contracts/{contract_id}/dispute", acme.headers),
            (f"/v1/work/{work['work_id']}/cancel", acme.headers),
            ("/v1/certificates/request", bot.headers),
            ("/v1/certificates/verify", acme.headers),
            (f"/v1/admin/contracts/{contract_id}/resolve", OPERATOR),
        ],
    }


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(route=st.integers(0, 8), body=FIELDS | JSON, raw=st.booleans())
def test_any_market_body_is_2xx_or_a_4xx_problem(
    client: httpx.Client, market: dict[str, Any], route: int, body: object, raw: bool
) -> None:
    path, headers = market["routes"][route]
    content = splice(json.dumps(body)).encode()
    if raw:  # break the JSON itself
        content = content[: max(1, len(content) // 2)]
    response = client.post(
        path, content=content, headers={**headers, "content-type": "application/json"}
    )
    assert response.status_code < 500, (path, body, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == response.status_code
