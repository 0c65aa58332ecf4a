"""The dashboard in a real headless Chromium (Debian's, driven by Playwright): a consumer signs
in, watches a bid arrive and the award appear live, sees the evaluation chart; no console
error, no request leaving the exchange's origin; another tenant's work is neither listed nor
reachable; the provider and the operator see theirs; sign-out ends the session.

Chromium is /usr/bin/chromium (`apt-get install chromium`, done by .ci/run when missing);
`playwright install` is never run. Without it the test is skipped with its reason, except
under CI (CI=true), where it fails. AEX_UPDATE_SCREENSHOT=1 writes docs/img/dashboard.png.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve.market_helpers import OPERATOR, bid, close_now, consumer, provider, submit_work
from tests.serve.server import OPERATOR_KEY, Server

CHROMIUM = Path(os.environ.get("AEX_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).parents[2] / "docs" / "img" / "dashboard.png"
WAIT_MS = 20_000


def _chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("dashboard") / "data").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api(dashboard_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dashboard_server.url, timeout=30) as client:
        yield client


class Browser:
    """One Chromium, a page per context; every request's URL and every console error kept."""

    def __init__(self, origin: str) -> None:
        from playwright.sync_api import sync_playwright

        self.origin = origin
        self.requests: list[str] = []
        self.errors: list[tuple[str, str]] = []  # (text, the URL it is about)
        self.refused: set[str] = set()  # URLs the test expects a 404 for (tenant isolation)
        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=str(_chromium()), args=CHROMIUM_ARGS, headless=True
        )

    def page(self) -> Any:
        context = self._browser.new_context(viewport={"width": 1400, "height": 1000})
        context.route("**/*", self._route)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("request", lambda request: self.requests.append(request.url))
        page.on(
            "console",
            lambda message: (
                self.errors.append((message.text, message.location.get("url", "")))
                if message.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: self.errors.append((str(error), "")))
        return page

    def _route(self, route: Any) -> None:
        if route.request.url.startswith(self.origin + "/"):
            route.continue_()
        else:
            route.abort()  # recorded by the request listener; asserted below

    def sign_in(self, page: Any, key: str) -> None:
        page.goto(self.origin + "/dashboard/sign-in")
        page.fill("#api_key", key)
        page.click("#sign-in")
        page.wait_for_selector("#sign-out")

    def refused_page(self, page: Any, path: str) -> int:
        """Opens a page the viewer may not see; its 404's console line is expected."""
        url = self.origin + path
        self.refused.add(url)
        response = page.goto(url)
        assert response is not None
        return int(response.status)

    def close(self) -> None:
        self._browser.close()
        self._playwright.stop()


@pytest.fixture(scope="module")
def browser(dashboard_server: Server) -> Iterator[Browser]:
    _chromium()
    found = Browser(dashboard_server.url)
    try:
        yield found
    finally:
        found.close()


def _live(page: Any) -> None:
    page.wait_for_selector("body[data-live='on']")  # the SSE stream is open


def test_a_consumer_watches_a_bid_arrive_and_the_award_appear_live_in_chromium(
    browser: Browser, api: httpx.Client, dashboard_server: Server
) -> None:
    buyer, other = consumer(api), consumer(api)
    agent = provider(api)
    work = submit_work(api, buyer, bid_window_seconds=300, title="Audit the payments service")
    theirs = submit_work(api, other, bid_window_seconds=300, title="Somebody else's secret")
    page = browser.page()
    browser.sign_in(page, buyer.api_key)
    assert page.url.endswith("/dashboard/consumer")
    assert work["work_id"] in page.content()
    assert theirs["work_id"] not in page.content()  # another tenant's work is not listed
    assert "Somebody else" not in page.content()

    page.click(f"a[href='/dashboard/consumer/work/{work['work_id']}']")
    page.wait_for_selector("#work-status")
    _live(page)
    assert page.locator("tr.bid").count() == 0

    placed = bid(api, agent, work["work_id"], price=120)
    assert placed.status_code == 201, placed.text
    page.wait_for_selector("tr.bid")  # arrived over SSE, no reload
    assert placed.json()["bid_id"] in page.inner_text("#bids")

    close_now(api, work["work_id"])
    page.wait_for_selector("#winner")
    assert page.inner_text("#winner") == placed.json()["bid_id"]
    page.wait_for_selector("#evaluation-chart svg")  # vega-lite rendered the components
    assert page.locator("#evaluation-chart svg .mark-rect path").count() >= 1

    # Another tenant's work by its URL: not found, nothing of it shown.
    assert browser.refused_page(page, f"/dashboard/consumer/work/{theirs['work_id']}") == 404
    assert "Somebody else" not in page.content()

    # The provider sees its bid won; another provider's page is not found.
    rival = provider(api)
    provider_page = browser.page()
    browser.sign_in(provider_page, agent.api_key)
    assert provider_page.url.endswith(f"/dashboard/provider/{agent.provider_id}")
    assert "won" in provider_page.inner_text("#provider-bids")
    assert browser.refused_page(provider_page, f"/dashboard/provider/{rival.provider_id}") == 404

    # Sign-out ends the session: the view asks for a sign-in again.
    page.goto(f"{dashboard_server.url}/dashboard/consumer")
    page.click("#sign-out")
    page.wait_for_selector("#api_key")
    page.goto(f"{dashboard_server.url}/dashboard/consumer")
    assert page.url.endswith("/dashboard/sign-in")

    _assert_clean(browser)


def test_the_operator_sees_the_market_live_in_chromium(
    browser: Browser, api: httpx.Client, dashboard_server: Server, tmp_path: Path
) -> None:
    buyer, agent = consumer(api, plan="BUSINESS"), provider(api)
    page = browser.page()
    browser.sign_in(page, OPERATOR_KEY)
    assert page.url.endswith("/dashboard/operator")
    _live(page)
    awards_before = page.locator("tr.award").count()

    settled = submit_work(api, buyer, bid_window_seconds=300)
    assert bid(api, agent, settled["work_id"], price=150).status_code == 201
    close_now(api, settled["work_id"])
    page.wait_for_function(
        f"document.querySelectorAll('tr.award').length > {awards_before}", timeout=WAIT_MS
    )
    still_open = submit_work(api, buyer, bid_window_seconds=300)
    page.wait_for_selector(f"tr.open-window:has-text('{still_open['work_id']}')")
    assert page.inner_text("tr.open-window td[data-closes-at]").endswith(" s")  # counting down
    page.wait_for_selector("#per-minute .chart svg")
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("AEX_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

    # The operator's session reads only: its cookie is no credential for the API.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=dashboard_server.url, cookies=cookies) as with_cookie:
        answer = with_cookie.get("/v1/admin/platform-revenue")
    assert answer.status_code == 401
    assert api.get("/v1/admin/platform-revenue", headers=OPERATOR).status_code == 200
    _assert_clean(browser)


def _assert_clean(browser: Browser) -> None:
    assert browser.requests, "the browser made no request"
    outside = [url for url in browser.requests if not url.startswith(browser.origin + "/")]
    assert outside == [], outside
    errors = [(text, url) for text, url in browser.errors if url not in browser.refused]
    assert errors == [], errors
