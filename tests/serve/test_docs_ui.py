"""The API docs UI works with no network: every script, stylesheet and icon it loads is served
by the exchange itself (issue 12: "served with its assets from a Python package ... no external
URL")."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest


class _AssetRefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href"} and value:
                self.refs.append(value)


def _asset_refs(html: str) -> list[str]:
    parser = _AssetRefs()
    parser.feed(html)
    # Inline scripts may name URLs too (the spec document's url).
    inline = re.findall(r"""url:\\s*['"]([^'"]+)['"]""", html)
    return parser.refs + inline


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger"])
def test_docs_page_loads_no_external_asset(client: httpx.Client, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    refs = _asset_refs(response.text)
    assert any(ref.endswith("swagger-ui-bundle.js") for ref in refs), refs
    for ref in refs:
        assert not re.match(r"^(https?:)?//", ref), f"external asset {ref!r} on {page}"


def test_docs_assets_are_served_by_the_exchange(client: httpx.Client) -> None:
    html = client.get("/schema/swagger").text
    for ref in _asset_refs(html):
        if ref.startswith("/schema/assets/"):
            asset = client.get(ref)
            assert asset.status_code == 200, ref
            assert len(asset.content) > 100, ref


def test_docs_assets_do_not_serve_outside_the_package(client: httpx.Client) -> None:
    for path in (
        "/schema/assets/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/schema/assets/..%2f..%2fapp.py",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"root:" not in response.content
