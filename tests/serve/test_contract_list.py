"""GET /v1/contracts: both parties list their contracts, page by cursor, filter by state and
side, and a filter the route does not take is a 422 naming it, never silently ignored."""

from __future__ import annotations

from typing import Any

import httpx

from tests.serve.market_helpers import bid, close_now, consumer, provider, submit_work


def _contracts(client: httpx.Client, headers: dict[str, str], **params: Any) -> Any:
    response = client.get("/v1/contracts", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _award(client: httpx.Client, buyer: Any, agent: Any) -> str:
    work_id = submit_work(client, buyer, bid_window_seconds=300)["work_id"]
    assert bid(client, agent, work_id, 100).status_code == 201
    closed = close_now(client, work_id)
    contract_id: str = closed["contract_id"]
    return contract_id


def test_each_party_lists_its_own_contracts_newest_first_by_cursor(
    client: httpx.Client,
) -> None:
    buyer = consumer(client, plan="BUSINESS")
    first_agent, second_agent = provider(client), provider(client)
    ids = [
        _award(client, buyer, first_agent),
        _award(client, buyer, first_agent),
        _award(client, buyer, second_agent),
    ]
    everything = _contracts(client, buyer.headers)
    assert [c["contract_id"] for c in everything["data"]] == ids[::-1]
    assert (everything["has_more"], everything["next_cursor"]) == (False, None)
    # Pages of two: the cursor continues exactly where the page ended.
    page = _contracts(client, buyer.headers, limit=2)
    assert [c["contract_id"] for c in page["data"]] == ids[:0:-1]
    assert page["has_more"] is True
    assert page["next_cursor"] == ids[1]
    rest = _contracts(client, buyer.headers, limit=2, starting_after=page["next_cursor"])
    assert [c["contract_id"] for c in rest["data"]] == [ids[0]]
    assert (rest["has_more"], rest["next_cursor"]) == (False, None)
    # The provider's key sees its own contracts only; its tenant sees them on the provider side.
    mine = _contracts(client, first_agent.headers)
    assert [c["contract_id"] for c in mine["data"]] == [ids[1], ids[0]]
    owner = first_agent.owner.headers
    assert [c["contract_id"] for c in _contracts(client, owner, role="provider")["data"]] == [
        ids[1],
        ids[0],
    ]
    assert _contracts(client, owner, role="consumer")["data"] == []
    assert _contracts(client, buyer.headers, role="provider")["data"] == []
    # State filter.
    assert len(_contracts(client, buyer.headers, status="AWARDED")["data"]) == 3
    assert _contracts(client, buyer.headers, status="SETTLED")["data"] == []
    # A stranger sees nothing, and cannot page from someone else's contract.
    stranger = consumer(client)
    assert _contracts(client, stranger.headers)["data"] == []
    foreign = client.get(
        "/v1/contracts", params={"starting_after": ids[0]}, headers=stranger.headers
    )
    assert foreign.status_code == 422, foreign.text
    assert foreign.json()["errors"] == [{"field": "starting_after", "reason": "unknown_contract"}]
    # The second provider's cursor does not open the first provider's contracts either.
    crossed = client.get(
        "/v1/contracts", params={"starting_after": ids[0]}, headers=second_agent.headers
    )
    assert crossed.status_code == 422, crossed.text


def test_a_bad_or_unknown_filter_is_a_422_naming_it(client: httpx.Client) -> None:
    buyer = consumer(client)
    bad_state = client.get("/v1/contracts", params={"status": "DONE"}, headers=buyer.headers)
    assert bad_state.status_code == 422, bad_state.text
    assert bad_state.json()["errors"][0]["field"] == "status"
    for path, misspelt in (
        ("/v1/contracts", "state"),
        ("/v1/work", "state"),  # the work list's filter is `status`: `state` is not ignored
        ("/v1/transactions", "since"),
    ):
        refused = client.get(path, params={misspelt: "x"}, headers=buyer.headers)
        assert refused.status_code == 422, (path, refused.text)
        problem = refused.json()
        assert problem["type"].endswith("/invalid-request")
        assert problem["errors"] == [{"field": misspelt, "reason": "unknown_parameter"}]
    # Declared parameters still pass.
    assert client.get("/v1/work", params={"limit": 5}, headers=buyer.headers).status_code == 200
    # The credential is checked first: no hint about parameters without one.
    assert client.get("/v1/contracts", params={"state": "x"}).status_code == 401
