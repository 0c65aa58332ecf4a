"""Small ASGI helpers shared by the gateway middleware."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from serve.gateway.problems import REQUEST_ID_SCOPE_KEY, ProblemError, problem_asgi_messages

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PRINCIPAL_SCOPE_KEY = "aex.principal"
IDEMPOTENCY_KEY_SCOPE_KEY = "aex.idempotency_key"


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def send_problem(scope: Scope, send: Send, problem: ProblemError) -> None:
    start, body = problem_asgi_messages(
        problem, request_id=str(scope.get(REQUEST_ID_SCOPE_KEY, "")), instance=scope["path"]
    )
    await send(start)
    await send(body)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
