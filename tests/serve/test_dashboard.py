"""The dashboard's session and its data, over HTTP (no browser): sign-in into a short-lived
read-only cookie session stored as a digest, CSRF on sign-in and sign-out, a revocation ends
the session, tenant isolation, the same views over a market-log DuckDB file."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from tests.serve.conftest import sign_up
from tests.serve.market_helpers import bid, close_now, consumer, provider, submit_work
from tests.serve.server import OPERATOR_KEY, Backend, Server


@pytest.fixture
def dashboard_server(server: Server) -> Server:
    """The session's shared server, once per backend (SQLite; PostgreSQL + Redis)."""
    return server


@pytest.fixture
def api(client: httpx.Client) -> httpx.Client:
    return client


def _browser(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def _sign_in(browser: httpx.Client, key: str) -> httpx.Response:
    page = browser.get("/dashboard/sign-in")
    assert page.status_code == 200
    return browser.post("/dashboard/sign-in", data={"csrf": _csrf(page.text), "api_key": key})


def test_sign_in_sets_a_strict_httponly_short_lived_cookie_stored_only_as_a_digest(
    dashboard_server: Server, api: httpx.Client, backend: Backend
) -> None:
    tenant = consumer(api)
    with _browser(dashboard_server) as browser:
        answer = _sign_in(browser, tenant.api_key)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/dashboard/consumer"
        cookie = next(
            c for c in answer.headers.get_list("set-cookie") if c.startswith("aex_dash_session=")
        )
        token = cookie.split(";")[0].split("=", 1)[1]
        flags = cookie.lower()
        assert "httponly" in flags
        assert "samesite=strict" in flags
        assert "max-age=900" in flags
        assert "secure" not in flags  # plain http here; https sets Secure
        assert browser.get("/dashboard/consumer").status_code == 200
    with backend.market_db(dashboard_server.data_dir) as db:
        digests = [r[0] for r in db.read("SELECT session_digest FROM dashboard_sessions")]
    assert hashlib.sha256(token.encode()).hexdigest() in digests
    for path in dashboard_server.data_dir.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_sign_in_without_the_page_s_csrf_token_is_refused(
    dashboard_server: Server, api: httpx.Client
) -> None:
    tenant = consumer(api)
    with _browser(dashboard_server) as browser:
        browser.get("/dashboard/sign-in")
        answer = browser.post(
            "/dashboard/sign-in", data={"csrf": "forged", "api_key": tenant.api_key}
        )
        assert answer.status_code == 403
        assert answer.json()["type"].endswith("csrf-token-mismatch")
        assert "aex_dash_session" not in answer.headers.get("set-cookie", "")


def test_a_wrong_key_signs_nobody_in(dashboard_server: Server) -> None:
    with _browser(dashboard_server) as browser:
        answer = _sign_in(browser, "aexk_" + "0" * 64)
        assert answer.status_code == 401
        assert "not accepted" in answer.text
        assert browser.get("/dashboard/consumer").status_code == 303  # to the sign-in page


def test_sign_out_needs_the_session_s_csrf_token_and_ends_the_session(
    dashboard_server: Server, api: httpx.Client
) -> None:
    tenant = consumer(api)
    with _browser(dashboard_server) as browser:
        _sign_in(browser, tenant.api_key)
        page = browser.get("/dashboard/consumer")
        assert browser.post("/dashboard/sign-out", data={"csrf": "forged"}).status_code == 403
        assert browser.get("/dashboard/consumer").status_code == 200
        answer = browser.post("/dashboard/sign-out", data={"csrf": _csrf(page.text)})
        assert answer.status_code == 303
        assert browser.get("/dashboard/consumer").status_code == 303


def test_revoking_the_key_ends_its_dashboard_session(
    dashboard_server: Server, api: httpx.Client
) -> None:
    tenant = sign_up(api, "Revoked Co", "CONSUMER")
    with _browser(dashboard_server) as browser:
        _sign_in(browser, tenant.api_key)
        assert browser.get("/dashboard/consumer").status_code == 200
        answer = api.delete(f"/v1/keys/{tenant.key_id}", headers=tenant.headers)
        assert answer.status_code == 200, answer.text
        assert browser.get("/dashboard/consumer").status_code == 303


def test_the_session_is_read_only_and_no_api_credential(
    dashboard_server: Server, api: httpx.Client
) -> None:
    tenant = consumer(api)
    with _browser(dashboard_server) as browser:
        _sign_in(browser, tenant.api_key)
        body = {"tenant_id": tenant.tenant_id, "amount": "1", "currency": "USD"}
        assert browser.post("/v1/withdrawals", json=body).status_code == 401
        assert browser.get("/v1/balance", params={"currency": "USD"}).status_code == 401
        # The dashboard has no route that writes: every POST is sign-in or sign-out.
        assert browser.post("/dashboard/consumer").status_code in (404, 405)


def test_a_tenant_sees_only_its_own_work_and_the_operator_view_is_the_operator_s(
    dashboard_server: Server, api: httpx.Client
) -> None:
    mine, theirs = consumer(api), consumer(api)
    agent = provider(api)
    own = submit_work(api, mine, bid_window_seconds=300)
    other = submit_work(api, theirs, bid_window_seconds=300, title="Hidden from others")
    assert bid(api, agent, own["work_id"], price=90).status_code == 201
    close_now(api, own["work_id"])
    with _browser(dashboard_server) as browser:
        _sign_in(browser, mine.api_key)
        listing = browser.get("/dashboard/consumer").text
        assert own["work_id"] in listing
        assert other["work_id"] not in listing
        work = browser.get(f"/dashboard/consumer/work/{own['work_id']}")
        assert work.status_code == 200
        assert 'id="evaluation-chart"' in work.text
        assert browser.get(f"/dashboard/consumer/work/{other['work_id']}").status_code == 404
        assert browser.get("/dashboard/operator").status_code == 403
        assert browser.get("/dashboard/provider/" + agent.provider_id).status_code == 404
    with _browser(dashboard_server) as browser:
        assert _sign_in(browser, agent.api_key).headers["location"] == "/dashboard/provider"
        to_own = browser.get("/dashboard/provider")
        assert to_own.headers["location"] == f"/dashboard/provider/{agent.provider_id}"
        own_page = browser.get(to_own.headers["location"])
        assert own_page.status_code == 200
        assert "won" in own_page.text
        assert "contract.awarded" in own_page.text  # its notification of the award
        assert browser.get(f"/dashboard/consumer/work/{own['work_id']}").status_code == 403
    with _browser(dashboard_server) as browser:
        _sign_in(browser, OPERATOR_KEY)
        market = browser.get("/dashboard/operator")
        assert market.status_code == 200
        assert other["work_id"] in market.text  # the operator sees every open window
        assert browser.get(f"/dashboard/consumer/work/{own['work_id']}").status_code == 403


def test_no_dashboard_page_names_an_outside_url(
    dashboard_server: Server, api: httpx.Client
) -> None:
    tenant = consumer(api)
    pages = []
    with _browser(dashboard_server) as browser:
        pages.append(browser.get("/dashboard/sign-in").text)
        _sign_in(browser, tenant.api_key)
        pages.append(browser.get("/dashboard/consumer").text)
        pages.append(browser.get("/dashboard/static/dashboard.js").text)
    for page in pages:
        assert re.search(r"(?:src|href)=[\"']?(?:https?:)?//", page) is None
        assert "http://" not in page
        assert "https://" not in page


def test_the_same_views_open_a_simulated_market_log(tmp_path: Path) -> None:
    from aex.sim.runner import simulate
    from aex.sim.scenario import load_scenario
    from serve.dashboard.log_app import log_app

    path = tmp_path / "run.duckdb"
    params = load_scenario("default")
    params = dataclasses.replace(params, ticks=6, log=dataclasses.replace(params.log, bids="all"))
    _, con = simulate(params, out=path)
    con.close()
    with TestClient(app=log_app(path)) as client:
        market = client.get("/dashboard/operator")
        assert market.status_code == 200
        assert 'class="award"' in market.text
        assert "market log run.duckdb" in market.text
        work_id = re.search(r'href="/dashboard/work/(\d+)"', market.text)
        provider_id = re.search(r'href="/dashboard/provider/(\d+)"', market.text)
        assert work_id is not None
        assert provider_id is not None
        work = client.get(f"/dashboard/work/{work_id.group(1)}")
        assert work.status_code == 200
        assert 'id="evaluation-chart"' in work.text
        reputation = client.get(f"/dashboard/provider/{provider_id.group(1)}")
        assert reputation.status_code == 200
        assert "tier" in reputation.text
        assert client.get("/dashboard/work/999999999").status_code == 404


def test_aex_dashboard_refuses_a_missing_market_log_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aex.cli import main

    code = main(["dashboard", "--log", str(tmp_path / "absent.duckdb")])
    assert code == 2
    assert "no market log at" in capsys.readouterr().err


def test_the_live_hints_of_a_tenant_are_only_for_events_about_its_own_market(
    dashboard_server: Server, api: httpx.Client, backend: Backend
) -> None:
    from aex.core import Plan
    from serve.dashboard.views import Interest, LiveSource
    from serve.identity.security import OPERATOR, Principal, PrincipalKind
    from serve.market.usecases import Market
    from serve.notifications.events import Delivered

    mine, theirs = consumer(api, plan="BUSINESS"), consumer(api)
    agent = provider(api)
    own = submit_work(api, mine, bid_window_seconds=300)
    other = submit_work(api, theirs, bid_window_seconds=300)

    def bid_on(work_id: str) -> Delivered:
        payload = {"bid_id": "bid_x", "work_id": work_id, "provider_id": agent.provider_id}
        return Delivered(1, "evt_x", "bid.submitted", "bid_x", 0, payload)

    def submitted(work_id: str) -> Delivered:
        return Delivered(2, "evt_y", "work.submitted", work_id, 0, {"work_id": work_id})

    with backend.market_db(dashboard_server.data_dir) as db:
        source = LiveSource(Market(db), wallets=None)  # type: ignore[arg-type]
        viewer = Principal(PrincipalKind.TENANT, mine.tenant_id, Plan.EXPLORER)
        interest = Interest(source, viewer)
        assert interest.concerns(bid_on(own["work_id"]))
        assert not interest.concerns(bid_on(other["work_id"]))
        later = submit_work(api, mine, bid_window_seconds=300)  # after the stream opened
        assert interest.concerns(submitted(later["work_id"]))
        assert interest.concerns(bid_on(later["work_id"]))
        assert not interest.concerns(submitted(other["work_id"]))
        seller = Principal(
            PrincipalKind.PROVIDER,
            agent.owner.tenant_id,
            Plan.EXPLORER,
            provider_id=agent.provider_id,
        )
        assert Interest(source, seller).concerns(bid_on(other["work_id"]))  # its own bid
        assert Interest(source, OPERATOR).concerns(bid_on(other["work_id"]))
