"""Invariant: any request body, to any write route, answers 2xx or a 4xx problem+json, never a
5xx (the fuzz test of STYLE.md 20)."""

from __future__ import annotations

import json

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serve.conftest import Tenant

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
# Literals json.dumps cannot write, spliced in after encoding: a number beyond IEEE double and a
# value nested past the decoder's recursion limit (each a 500 before issue 11).
HUGE, DEEP = "\u0000huge", "\u0000deep"
_SPLICES = {json.dumps(HUGE): "1e999", json.dumps(DEEP): "[" * 1_200 + "]" * 1_200}
JSON_OR_SPLICE = JSON | st.sampled_from([HUGE, DEEP])


def splice(text: str) -> str:
    for placeholder, literal in _SPLICES.items():
        text = text.replace(placeholder, literal)
    return text


FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "tenant_id": st.text(max_size=30) | JSON,
        "amount": st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str) | JSON,
        "currency": st.sampled_from(["USD", "JPY", "usd", "XXX", ""]) | JSON,
        "name": JSON_OR_SPLICE,
        "type": st.sampled_from(["CONSUMER", "AI_AGENT", "X"]) | JSON,
        "capabilities": JSON_OR_SPLICE,
        "category": JSON_OR_SPLICE,
        "provider_id": JSON,
        "categories": JSON,
        "extra": JSON_OR_SPLICE,
    },
)
ROUTES = ["/v1/deposits", "/v1/withdrawals", "/v1/providers", "/v1/subscriptions", "/v1/tenants"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(route=st.sampled_from(ROUTES), body=FIELDS | JSON_OR_SPLICE, raw=st.booleans())
def test_any_body_is_2xx_or_a_4xx_problem(
    client: httpx.Client, tenant: Tenant, route: str, body: object, raw: bool
) -> None:
    content = splice(json.dumps(body)).encode()
    if raw:  # break the JSON itself
        content = content[: max(1, len(content) // 2)]
    headers = {**tenant.headers, "content-type": "application/json"}
    response = client.post(route, content=content, headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == response.status_code
