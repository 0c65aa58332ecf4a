"""`Location` on 201 Created: where the resource a POST made can be read.

One table (`CREATED_AT`): for each route that answers 201, the path of what it created, filled
from the answer's own fields (`/v1/work/{work_id}` from the body's `work_id`). Routes whose
201 makes nothing addressable (a token, a deposit's journal entry, a one-time secret) are in
`NOT_ADDRESSABLE` with the reason; tests/serve/test_locations.py fails when a 201 route is in
neither, so a new route cannot forget its `Location`.

`LocationMiddleware` sits outside the idempotency layer, so a replayed 201 carries the same
`Location` as the first answer (the stored reply holds the body the header is made from).
`document_locations` writes the header into the OpenAPI document's 201 responses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Final

from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, Operation, Schema
from litestar.openapi.spec.enums import OpenAPIType

from serve.gateway.asgi import ASGIApp, Message, Receive, Scope, Send

# (method, route template) -> the created resource's path template, its fields from the body.
CREATED_AT: Final[dict[tuple[str, str], str]] = {
    ("POST", "/v1/tenants"): "/v1/tenants/me",
    ("POST", "/v1/keys"): "/v1/keys/{key_id}",
    ("POST", "/v1/keys/{key_id}/rotate"): "/v1/keys/{key_id}",
    ("POST", "/v1/providers"): "/v1/providers/{provider_id}",
    ("POST", "/v1/subscriptions"): "/v1/subscriptions/{subscription_id}",
    ("POST", "/v1/work"): "/v1/work/{work_id}",
    ("POST", "/v1/certificates/request"): "/v1/certificates/{cert_id}",
    ("POST", "/v1/certificates/challenges"): "/v1/certificates/challenges/{token}",
    ("POST", "/v1/certificates/delegations"): "/v1/certificates/delegations/{delegation_id}",
    ("POST", "/v1/mandates"): "/v1/mandates/{mandate_id}",
    ("POST", "/v1/admin/vouchers"): "/v1/admin/vouchers/{voucher_id}",
}

# 201 routes with nothing to point at, and why.
NOT_ADDRESSABLE: Final[dict[tuple[str, str], str]] = {
    ("POST", "/v1/providers/{provider_id}/webhook-secret"): "a secret shown once",
    ("POST", "/v1/deposits"): "a journal entry, listed by GET /v1/transactions",
    ("POST", "/v1/withdrawals"): "a journal entry, listed by GET /v1/transactions",
    ("POST", "/v1/bids"): "a sealed bid has no route of its own for its provider yet",
    ("POST", "/v1/certificates/delegation-keys"): "a registered public key, no read route",
    ("POST", "/v1/mandates/keys"): "a registered public key, no read route",
    ("POST", "/v1/vouchers/redeem"): "a redemption changes the wallet (GET /v1/balance)",
}

_FIELD: Final = re.compile(r"\{([a-z_]+)\}")
# A created resource's answer is a few KB; past this the header is not attempted.
BODY_BYTES_MAX: Final = 1 << 20


def location(template: str, body: Any) -> str | None:
    """The template filled from the body's string fields, or None if one is missing."""
    if not isinstance(body, dict):
        return None
    values: dict[str, str] = {}
    for name in _FIELD.findall(template):
        value = body.get(name)
        if not isinstance(value, str) or not value or "/" in value:
            return None
        values[name] = value
    return _FIELD.sub(lambda match: values[match.group(1)], template)


class LocationMiddleware:
    """Adds `Location` to a 201 answer of a route in `CREATED_AT` (fresh or replayed)."""

    def __init__(self, app: ASGIApp, *, route_of: Callable[[str], str]) -> None:
        self.app = app
        self.route_of = route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        template = (
            CREATED_AT.get((scope["method"], self.route_of(scope["path"])))
            if scope["type"] == "http"
            else None
        )
        if template is None:
            await self.app(scope, receive, send)
            return
        start: list[Message] = []
        chunks: list[bytes] = []

        async def send_with_location(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 201:
                start.append(message)
                return
            if not start or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False) and sum(map(len, chunks)) <= BODY_BYTES_MAX:
                return
            body = b"".join(chunks)
            head = start.pop()
            try:
                where = location(template, json.loads(body))
            except ValueError:
                where = None
            if where is not None:
                head = {**head, "headers": [*head["headers"], (b"location", where.encode())]}
            await send(head)
            await send({**message, "body": body})

        await self.app(scope, receive, send_with_location)


def document_locations(app: Litestar) -> None:
    """The `Location` header on every CREATED_AT route's 201 in the OpenAPI document."""
    openapi = app.plugins.get(OpenAPIPlugin).provide_openapi()
    for (method, route), template in CREATED_AT.items():
        item = (openapi.paths or {}).get(route)
        operation = getattr(item, method.lower(), None)
        assert isinstance(operation, Operation), (method, route)
        response = (operation.responses or {}).get("201")
        assert isinstance(response, OpenAPIResponse), (method, route)
        headers = dict(response.headers or {})
        headers["Location"] = OpenAPIHeader(
            schema=Schema(type=OpenAPIType.STRING),
            description=f"the created resource: `{template}`",
        )
        response.headers = headers
