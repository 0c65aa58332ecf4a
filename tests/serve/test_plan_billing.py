"""Issue 15 item 4: plans bought, upgraded and downgraded through the API with the documented
proration (aex/core/billing.py), posted to the ledger in the plan change's transaction, the
limits following at once; usage, invoices and the platform's revenue by stream. Over real HTTP,
on both backends. A term's start is moved back in the database to stand for time passing."""

from __future__ import annotations

from typing import Any

import httpx

from aex.core.billing import TERM_MS
from tests.serve.conftest import Tenant
from tests.serve.market_helpers import consumer
from tests.serve.server import OPERATOR_KEY, Backend, Server

OPERATOR = {"X-API-Key": OPERATOR_KEY}


def _change(client: httpx.Client, tenant: Tenant, plan: str, agents: int = 1) -> httpx.Response:
    return client.post("/v1/plan", json={"plan": plan, "agents": agents}, headers=tenant.headers)


def _bought(client: httpx.Client, tenant: Tenant, plan: str, agents: int = 1) -> dict[str, Any]:
    response = _change(client, tenant, plan, agents)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _available_minor(client: httpx.Client, tenant: Tenant) -> int:
    response = client.get("/v1/balance", params={"currency": "USD"}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    whole, cents = response.json()["available"].split(".")
    return int(whole) * 100 + int(cents)


def _age_term(backend: Backend, server: Server, tenant: Tenant, elapsed_ms: int) -> int:
    """Moves the tenant's term `elapsed_ms` into the past; answers its end now."""

    def write(session: Any) -> int:
        row = session.connection.execute(
            "UPDATE plan_subscriptions SET starts_at_ms = starts_at_ms - ?,"
            " ends_at_ms = ends_at_ms - ? WHERE tenant_id = ? RETURNING ends_at_ms",
            (elapsed_ms, elapsed_ms, tenant.tenant_id),
        ).fetchone()
        return int(row[0])

    with backend.market_db(server.data_dir) as db:
        return int(db.run(write))


def _events(backend: Backend, server: Server, subject_id: str) -> list[str]:
    with backend.market_db(server.data_dir) as db:
        rows = db.read("SELECT type FROM outbox WHERE subject_id = ? ORDER BY seq", (subject_id,))
    return [str(row[0]) for row in rows]


def _ledger_balances(backend: Backend, server: Server) -> None:
    with backend.ledger(server.data_dir) as ledger:
        assert set(ledger.totals_by_currency().values()) == {0}
        assert ledger.wallet_mismatches() == []


def test_a_mid_year_upgrade_posts_the_documented_proration_to_the_cent(
    client: httpx.Client, server: Server, backend: Backend
) -> None:
    buyer = consumer(client, funds="2000.00")
    bought = _bought(client, buyer, "PROFESSIONAL", agents=2)  # 2 x $99 = $198.00
    assert (bought["net"], bought["credit"], bought["previous_plan"]) == (
        "198.00",
        "0.00",
        "EXPLORER",
    )
    assert _available_minor(client, buyer) == 200_000 - 19_800
    old_end = _age_term(backend, server, buyer, TERM_MS // 2)  # half the term used
    upgraded = _bought(client, buyer, "BUSINESS", agents=2)  # 2 x $499 = $998.00
    # credit = floor(19,800 * (old end - now) / TERM_MS): half of $198.00, less a cent at most
    # for the milliseconds between the two requests.
    credit = 19_800 * (old_end - upgraded["term"]["starts_at_ms"]) // TERM_MS
    assert credit in (9_899, 9_900)
    assert upgraded["net_minor"] == 99_800 - credit
    assert _available_minor(client, buyer) == 200_000 - 19_800 - (99_800 - credit)
    assert upgraded["term"]["ends_at_ms"] - upgraded["term"]["starts_at_ms"] == TERM_MS
    invoice = upgraded["invoice"]
    assert (invoice["kind"], invoice["amount_minor"], invoice["quantity"]) == (
        "PLAN",
        99_800 - credit,
        2,
    )
    shown = client.get("/v1/plan", headers=buyer.headers).json()
    assert (shown["plan"], shown["term"]["agents"], shown["term"]["price"]) == (
        "BUSINESS",
        2,
        "998.00",
    )
    assert _events(backend, server, buyer.tenant_id) == ["billing.plan_changed"] * 2
    assert _events(backend, server, invoice["invoice_id"]) == ["billing.invoice_issued"]
    _ledger_balances(backend, server)


def test_a_downgrade_rebates_the_unused_term_less_the_new_one(
    client: httpx.Client, server: Server, backend: Backend
) -> None:
    buyer = consumer(client, funds="600.00")
    _bought(client, buyer, "BUSINESS")  # $499.00
    old_end = _age_term(backend, server, buyer, TERM_MS // 5)  # a fifth of the term used
    downgraded = _bought(client, buyer, "PROFESSIONAL")  # a new $99.00 term from now
    credit = 49_900 * (old_end - downgraded["term"]["starts_at_ms"]) // TERM_MS
    assert credit in (39_919, 39_920)  # four fifths of $499.00, floored
    assert downgraded["net_minor"] == 9_900 - credit < 0
    assert downgraded["invoice"]["amount_minor"] == 9_900 - credit  # a credit note
    assert _available_minor(client, buyer) == 60_000 - 49_900 - (9_900 - credit)
    # Back to the free plan at once: the whole unused $99.00 term is rebated.
    free = _bought(client, buyer, "EXPLORER")
    free_credit = int(free["credit"].replace(".", ""))
    assert free_credit in (9_899, 9_900)
    assert free["net_minor"] == -free_credit
    _ledger_balances(backend, server)


def test_a_plan_the_wallet_cannot_pay_is_refused_with_nothing_written(
    client: httpx.Client, server: Server, backend: Backend
) -> None:
    buyer = consumer(client, funds="100.00")
    refused = _change(client, buyer, "BUSINESS")  # $499.00 > $100.00
    assert refused.status_code == 402, refused.text
    assert refused.json()["type"].endswith("/plan-payment-required")
    assert _available_minor(client, buyer) == 10_000
    assert client.get("/v1/plan", headers=buyer.headers).json()["term"] is None
    assert client.get("/v1/tenants/me", headers=buyer.headers).json()["plan"] == "EXPLORER"
    assert client.get("/v1/invoices", headers=buyer.headers).json()["data"] == []
    assert _events(backend, server, buyer.tenant_id) == []
    unchanged = _change(client, buyer, "EXPLORER")  # the free plan it already has
    assert unchanged.status_code == 409, unchanged.text
    _ledger_balances(backend, server)


def test_the_plan_limits_follow_the_plan_at_once(client: httpx.Client) -> None:
    owner = consumer(client, funds="300.00")
    body = {"name": "Bot", "type": "AI_AGENT", "capabilities": ["x"], "category": "TECHNOLOGY"}
    assert client.post("/v1/providers", json=body, headers=owner.headers).status_code == 201
    over = client.post("/v1/providers", json=body, headers=owner.headers)
    assert over.status_code == 403, over.text  # Explorer: one agent
    bought = _bought(client, owner, "PROFESSIONAL", agents=2)
    assert bought["quotas"]["requests_per_minute"] == 500
    assert client.post("/v1/providers", json=body, headers=owner.headers).status_code == 201
    over = client.post("/v1/providers", json=body, headers=owner.headers)
    assert over.status_code == 403, over.text  # two agents paid for (Professional holds 5)
    # A downgrade that would strand registered agents is refused.
    stranded = _change(client, owner, "EXPLORER")
    assert stranded.status_code == 409, stranded.text
    usage = client.get("/v1/usage", headers=owner.headers).json()
    assert usage["period"]["plans_invoiced"] == "198.00"  # this month's
    past = client.get("/v1/usage", params={"period": "1999-01"}, headers=owner.headers).json()
    assert past["period"]["plans_invoiced"] == "0.00"
    assert (usage["plan"], usage["consumption"]["agents"], usage["limits"]["agents_max"]) == (
        "PROFESSIONAL",
        2,
        5,
    )


def test_invoices_are_the_tenants_own_and_paginate(
    client: httpx.Client, other_tenant: Tenant
) -> None:
    buyer = consumer(client, funds="4000.00")
    ids = [
        _bought(client, buyer, plan)["invoice"]["invoice_id"]
        for plan in ("PROFESSIONAL", "BUSINESS", "ENTERPRISE")
    ]
    first = client.get("/v1/invoices", params={"limit": 2}, headers=buyer.headers).json()
    assert [i["invoice_id"] for i in first["data"]] == ids[:0:-1]
    assert (first["has_more"], first["next_cursor"]) == (True, ids[1])
    rest = client.get(
        "/v1/invoices", params={"limit": 2, "starting_after": ids[1]}, headers=buyer.headers
    ).json()
    assert [i["invoice_id"] for i in rest["data"]] == ids[:1]
    assert (rest["has_more"], rest["next_cursor"]) == (False, None)
    assert client.get(f"/v1/invoices/{ids[0]}", headers=buyer.headers).status_code == 200
    assert client.get(f"/v1/invoices/{ids[0]}", headers=other_tenant.headers).status_code == 404
    theirs = client.get("/v1/invoices", headers=other_tenant.headers).json()
    assert theirs == {"data": [], "has_more": False, "next_cursor": None}
    foreign = client.get(
        "/v1/invoices", params={"starting_after": ids[0]}, headers=other_tenant.headers
    )
    assert foreign.status_code == 422


def test_the_operator_reads_revenue_by_stream_and_its_override_charges_nothing(
    client: httpx.Client, server: Server, backend: Backend
) -> None:
    before = client.get("/v1/admin/revenue", headers=OPERATOR).json()
    buyer = consumer(client, funds="100.00")
    _bought(client, buyer, "PROFESSIONAL")
    after = client.get("/v1/admin/revenue", headers=OPERATOR).json()
    assert set(after["streams"]) == {"fees", "verification", "plans", "breakage"}
    gained = after["streams"]["plans"]["amount_minor"] - before["streams"]["plans"]["amount_minor"]
    assert gained == 9_900
    assert after["total_minor"] == sum(s["amount_minor"] for s in after["streams"].values())
    assert (
        client.get("/v1/admin/revenue", params={"period": "1999-01"}, headers=OPERATOR).json()[
            "total_minor"
        ]
        == 0
    )
    assert (
        client.get("/v1/admin/revenue", params={"period": "1999"}, headers=OPERATOR).status_code
        == 422
    )
    # The operator's override: the plan at once, nothing charged, the paid term kept.
    overridden = client.put(
        f"/v1/admin/tenants/{buyer.tenant_id}/plan", json={"plan": "ENTERPRISE"}, headers=OPERATOR
    )
    assert overridden.status_code == 200, overridden.text
    assert _available_minor(client, buyer) == 10_000 - 9_900
    shown = client.get("/v1/plan", headers=buyer.headers).json()
    assert (shown["plan"], shown["term"]["plan"]) == ("ENTERPRISE", "PROFESSIONAL")
    assert _events(backend, server, buyer.tenant_id) == ["billing.plan_changed"] * 2
    _ledger_balances(backend, server)


def test_revenue_refuses_an_unknown_currency_and_a_month_before_the_epoch(
    client: httpx.Client, operator: dict[str, str]
) -> None:
    # Found by schemathesis: both were 500s.
    unknown = client.get("/v1/admin/revenue", params={"currency": "XYZ"}, headers=operator)
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["errors"][0]["field"] == "currency"
    ancient = client.get("/v1/admin/revenue", params={"period": "0000-01"}, headers=operator)
    assert ancient.status_code == 422, ancient.text
    assert ancient.json()["errors"][0]["field"] == "period"
