"""GET /v1/bids: a provider lists its own bids, newest first, by cursor, sealed: nothing of a
competitor's bid on the same work reaches it."""

from __future__ import annotations

import httpx

from tests.serve.market_helpers import bid, close_now, consumer, provider, submit_work


def test_a_provider_lists_only_its_own_bids_newest_first_by_cursor(client: httpx.Client) -> None:
    buyer = consumer(client, plan="BUSINESS")
    mine, rival = provider(client), provider(client)
    works = [submit_work(client, buyer, bid_window_seconds=300)["work_id"] for _ in range(2)]
    my_bids = []
    for work_id in works:
        placed = bid(client, mine, work_id, 120)
        assert placed.status_code == 201, placed.text
        my_bids.append(placed.json()["bid_id"])
        rival_bid = bid(client, rival, work_id, 90)
        assert rival_bid.status_code == 201, rival_bid.text
    rival_bid_id = rival_bid.json()["bid_id"]
    close_now(client, works[0])

    listed = client.get("/v1/bids", headers=mine.headers)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert [b["bid_id"] for b in page["data"]] == my_bids[::-1]
    assert {b["provider_id"] for b in page["data"]} == {mine.provider_id}
    assert [b["work_status"] for b in page["data"]] == ["OPEN", "AWARDED"]
    # Sealed: the rival's id, bid and price appear nowhere in the answer.
    assert rival.provider_id not in listed.text
    assert rival_bid_id not in listed.text
    # Pages of one.
    first = client.get("/v1/bids", params={"limit": 1}, headers=mine.headers).json()
    assert ([b["bid_id"] for b in first["data"]], first["has_more"]) == ([my_bids[1]], True)
    rest = client.get(
        "/v1/bids",
        params={"limit": 1, "starting_after": first["next_cursor"]},
        headers=mine.headers,
    ).json()
    assert ([b["bid_id"] for b in rest["data"]], rest["has_more"]) == ([my_bids[0]], False)
    assert rest["next_cursor"] is None
    # The provider's tenant sees its provider's bids; the consumer none of them.
    owned = client.get("/v1/bids", headers=mine.owner.headers).json()["data"]
    assert [b["bid_id"] for b in owned] == my_bids[::-1]
    assert client.get("/v1/bids", headers=buyer.headers).json()["data"] == []
    # A rival's bid is no cursor of mine.
    crossed = client.get("/v1/bids", params={"starting_after": rival_bid_id}, headers=mine.headers)
    assert crossed.status_code == 422, crossed.text
    assert crossed.json()["errors"] == [{"field": "starting_after", "reason": "unknown_bid"}]
