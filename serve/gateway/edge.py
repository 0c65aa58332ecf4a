"""The first layers of the spec's pipeline: request id, JSON logs, recovery, CORS; and the
unknown-path 404 that comes before any credential is read.

Spec "Production Middleware Stack": "1. RequestID → Generate unique trace ID 2. Logging →
Structured JSON request/response logs 3. Recovery → Catch panics, return 500 4. CORS →
Cross-origin headers (configurable origins)". Each is a plain ASGI middleware with no state
of its own beyond its configuration.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import Callable
from typing import TextIO

import msgspec

from serve.gateway.asgi import (
    PRINCIPAL_SCOPE_KEY,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    header,
    send_problem,
)
from serve.gateway.problems import REQUEST_ID_SCOPE_KEY, ProblemError, problem_for_outage
from serve.identity.security import next_id
from serve.telemetry import logs, tracing


class _AccessLine(msgspec.Struct, frozen=True, omit_defaults=True):
    # The fields of every log line (serve/telemetry/logs.py), then the request's own.
    ts: str
    level: str
    logger: str
    msg: str
    request_id: str
    tenant: str | None
    principal: str | None
    method: str
    route: str
    status: int
    latency_ms: float
    trace_id: str | None = None
    span_id: str | None = None


_encode_line = msgspec.json.Encoder().encode
_LOG_FLUSH_AFTER_S = 0.05
_LOG_LINES_PER_WRITE_MAX = 256
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
EXPOSED_HEADERS = (
    "X-Request-ID, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After"
)


class RequestIdMiddleware:
    """Echoes a well-formed `X-Request-ID` or generates one; every response carries it, and
    every log line written while the request runs (serve/telemetry/logs.py's REQUEST_ID)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        presented = header(scope, b"x-request-id")
        request_id = presented if presented and _REQUEST_ID.fullmatch(presented) else None
        request_id = request_id or next_id()
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        encoded = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", encoded)]
            await send(message)

        token = logs.REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logs.REQUEST_ID.reset(token)


class JsonLogMiddleware:
    """One JSON line per request: request id, trace and span id, tenant, method, route, status,
    latency; never a header or a body (so never a secret). In serve/telemetry/logs.py's
    format (logger `aex.access`), but written straight to the stream (stderr by default): the
    logging module's record machinery costs more than the rest of this layer."""

    def __init__(self, app: ASGIApp, *, stream: TextIO | None = None) -> None:
        self.app = app
        self.stream = stream or sys.stderr
        # Lines are written in batches (at most 50 ms or 256 lines late): one write per batch,
        # not one syscall per request.
        self._lines: list[bytes] = []
        self._flush_scheduled = False

    def _log(self, line: bytes) -> None:
        self._lines.append(line)
        if len(self._lines) >= _LOG_LINES_PER_WRITE_MAX:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(_LOG_FLUSH_AFTER_S, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._lines:
            lines, self._lines = self._lines, []
            self.stream.write(b"\n".join(lines).decode() + "\n")
            self.stream.flush()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_s = time.perf_counter()
        status = [500]

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            principal = scope.get(PRINCIPAL_SCOPE_KEY)
            ids = tracing.trace_ids()
            line = _AccessLine(
                ts=logs.rfc3339(time.time()),
                level="info",
                logger="aex.access",
                msg="request",
                request_id=scope.get(REQUEST_ID_SCOPE_KEY, ""),
                tenant=getattr(principal, "tenant_id", None),
                principal=getattr(principal, "kind", None),
                method=scope["method"],
                route=scope["path"],
                status=status[0],
                latency_ms=(time.perf_counter() - started_s) * 1000,
                trace_id=ids[0] if ids else None,
                span_id=ids[1] if ids else None,
            )
            self._log(_encode_line(line))


class RecoveryMiddleware:
    """Spec: "Catch panics, return 500": problem+json, no stack trace to the client."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = [False]

        async def send_tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as error:
            outage = problem_for_outage(error)  # a dependency down is no bug: no stack trace
            if outage is None:
                logging.getLogger("aex.serve").exception("unhandled error in the gateway")
            if started[0]:
                raise
            problem = outage or ProblemError(500, "internal-error", "the request failed")
            await send_problem(scope, send, problem)


class UnknownPathMiddleware:
    """A path no route serves is 404 `not-found` for everyone, before any credential is read:
    a client with no key, a wrong key or the operator's learns the same (the paths that exist
    are public, in the OpenAPI document), and no rate-limit or key lookup is spent on it."""

    def __init__(self, app: ASGIApp, *, serves: Callable[[str], bool]) -> None:
        self.app = app
        self.serves = serves

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.serves(scope["path"]):
            problem = ProblemError(404, "not-found", "no such path")
            await send_problem(scope, send, problem)
            return
        await self.app(scope, receive, send)


class CorsMiddleware:
    """Cross-origin headers for the configured origins ("*" allows any); answers preflights."""

    def __init__(self, app: ASGIApp, *, origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = frozenset(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = header(scope, b"origin") if scope["type"] == "http" else None
        if origin is None or not (origin in self.origins or "*" in self.origins):
            await self.app(scope, receive, send)
            return
        cors_headers = [
            (b"access-control-allow-origin", origin.encode()),
            (b"vary", b"Origin"),
            (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
        ]
        requested = header(scope, b"access-control-request-method")
        if scope["method"] == "OPTIONS" and requested is not None:
            allow_headers = header(scope, b"access-control-request-headers") or ""
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        *cors_headers,
                        (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE"),
                        (b"access-control-allow-headers", allow_headers.encode()),
                        (b"access-control-max-age", b"600"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *cors_headers]
            await send(message)

        await self.app(scope, receive, send_cors)
