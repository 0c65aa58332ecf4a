"""The market's real answers along a whole workflow (work, bid, close, evaluation, contract,
progress, completion, dispute, resolution, reputation, revenue, deliveries, open work, the
wallet's entries) conform to what /schema/openapi.json says of them: generated cases rarely
reach these 2xx answers."""

from __future__ import annotations

import httpx
import schemathesis

from tests.serve.market_helpers import (
    OPERATOR,
    bid,
    close_now,
    complete,
    consumer,
    provider,
    submit_work,
)


def test_a_whole_market_workflow_answers_as_the_document_describes(
    client: httpx.Client, server: object
) -> None:
    schema = schemathesis.openapi.from_url(str(client.base_url) + "/schema/openapi.json")

    def conforms(method: str, path: str, response: httpx.Response) -> dict[str, object]:
        assert response.status_code < 300, response.text
        schema[path][method].validate_response(response)
        found: dict[str, object] = response.json() if isinstance(response.json(), dict) else {}
        return found

    tenant = consumer(client, plan="BUSINESS")
    agent = provider(client)
    work = submit_work(client, tenant)
    work_id = str(work["work_id"])
    conforms("POST", "/v1/work", client.post("/v1/work", json=_again(work), headers=tenant.headers))
    conforms("GET", "/v1/work", client.get("/v1/work", headers=tenant.headers))
    conforms("GET", "/v1/work/{work_id}", client.get(f"/v1/work/{work_id}", headers=tenant.headers))
    conforms("POST", "/v1/bids", bid(client, agent, work_id, price="100"))
    bids = client.get(f"/v1/work/{work_id}/bids", headers=tenant.headers)
    conforms("GET", "/v1/work/{work_id}/bids", bids)
    closed = close_now(client, work_id)
    assert closed["status"] in {"AWARDED", "EVALUATING"}
    closing = client.post(f"/v1/admin/work/{work_id}/close", headers=OPERATOR)
    if closing.status_code < 300:
        conforms("POST", "/v1/admin/work/{work_id}/close", closing)
    shown = conforms(
        "GET", "/v1/work/{work_id}", client.get(f"/v1/work/{work_id}", headers=tenant.headers)
    )
    evaluation = client.get(f"/v1/work/{work_id}/evaluation", headers=tenant.headers)
    conforms("GET", "/v1/work/{work_id}/evaluation", evaluation)
    contract_id = str(shown["contract_id"])
    path = f"/v1/contracts/{contract_id}"
    conforms("GET", "/v1/contracts/{contract_id}", client.get(path, headers=agent.headers))
    progress = client.post(path + "/progress", json={"percent": 50}, headers=agent.headers)
    conforms("POST", "/v1/contracts/{contract_id}/progress", progress)
    # The check can fail: a contract is not what the document says a work is.
    assert not schema["/v1/work/{work_id}"]["GET"].is_valid_response(progress)
    conforms("POST", "/v1/contracts/{contract_id}/complete", complete(client, agent, contract_id))
    dispute = client.post(path + "/dispute", json={"reason": "wrong"}, headers=tenant.headers)
    conforms("POST", "/v1/contracts/{contract_id}/dispute", dispute)
    resolve = client.post(
        f"/v1/admin/contracts/{contract_id}/resolve",
        json={"resolution": "refund"},
        headers=OPERATOR,
    )
    conforms("POST", "/v1/admin/contracts/{contract_id}/resolve", resolve)
    reputation = client.get(f"/v1/providers/{agent.provider_id}/reputation", headers=tenant.headers)
    conforms("GET", "/v1/providers/{provider_id}/reputation", reputation)
    revenue = client.get("/v1/admin/platform-revenue", headers=OPERATOR)
    conforms("GET", "/v1/admin/platform-revenue", revenue)
    deliveries = client.get("/v1/notifications/deliveries", headers=agent.headers)
    conforms("GET", "/v1/notifications/deliveries", deliveries)
    second = submit_work(client, tenant)
    open_work = conforms("GET", "/v1/work/open", client.get("/v1/work/open", headers=agent.headers))
    assert second["work_id"] in {w["work_id"] for w in open_work["data"]}  # type: ignore[attr-defined]
    ledger = client.get("/v1/transactions", params={"limit": 2}, headers=tenant.headers)
    assert conforms("GET", "/v1/transactions", ledger)["has_more"] is True
    cancel = client.post(f"/v1/work/{second['work_id']}/cancel", headers=tenant.headers)
    conforms("POST", "/v1/work/{work_id}/cancel", cancel)


def _again(work: dict[str, object]) -> dict[str, object]:
    # The spec as shown back is a valid body again (money as decimal strings).
    fields = ("title", "category", "budget", "requirements", "success_criteria")
    budget = dict(work["budget"])  # type: ignore[call-overload]
    return {**{name: work[name] for name in fields}, "budget": budget, "bid_window_seconds": 5}
