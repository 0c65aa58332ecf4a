"""The rules of the spec's first layers: the request id, the JSON access log, CORS.

Spec "Production Middleware Stack": "1. RequestID → Generate unique trace ID 2. Logging →
Structured JSON request/response logs 3. Recovery → Catch panics, return 500 4. CORS →
Cross-origin headers (configurable origins)". The gateway (serve/gateway/pipeline.py) runs
them, with recovery, in one ASGI layer; what each decides is here.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from typing import TextIO

import msgspec

from serve.gateway.asgi import PRINCIPAL_SCOPE_KEY, Message, Scope, header
from serve.gateway.problems import REQUEST_ID_SCOPE_KEY
from serve.identity.security import next_id
from serve.telemetry import logs


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
_EXPOSED_HEADERS = EXPOSED_HEADERS.encode()


def request_id_of(scope: Scope) -> str:
    """A well-formed `X-Request-ID` the client sent, echoed; otherwise a new one. Every answer
    carries it, and every log line written while the request runs (logs.REQUEST_ID)."""
    presented = header(scope, b"x-request-id")
    if presented and _REQUEST_ID.fullmatch(presented):
        return presented
    return next_id()


class AccessLog:
    """One JSON line per request: request id, trace and span id, tenant, method, route, status,
    latency; never a header or a body (so never a secret). In serve/telemetry/logs.py's
    format (logger `aex.access`), but written straight to the stream (stderr by default): the
    logging module's record machinery costs more than the line. Lines are written in batches
    (at most 50 ms or 256 lines late): one write per batch, not one syscall per request."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._lines: list[bytes] = []
        self._flush_scheduled = False

    def request(
        self,
        scope: Scope,
        status: int,
        latency_s: float,
        ids: tuple[str, str] | None,
    ) -> None:
        principal = scope.get(PRINCIPAL_SCOPE_KEY)
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
            status=status,
            latency_ms=latency_s * 1000,
            trace_id=ids[0] if ids else None,
            span_id=ids[1] if ids else None,
        )
        self._lines.append(_encode_line(line))
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


class Cors:
    """Cross-origin headers for the configured origins ("*" allows any), and the answer to a
    preflight."""

    def __init__(self, origins: tuple[str, ...]) -> None:
        self.origins = frozenset(origins)
        self._any = "*" in self.origins

    def _allowed_origin(self, scope: Scope) -> str | None:
        origin = header(scope, b"origin") if self.origins else None
        if origin is None or not (self._any or origin in self.origins):
            return None
        return origin

    def headers_for(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        """The headers every answer to this request carries: none for no or another origin."""
        origin = self._allowed_origin(scope)
        if origin is None:
            return []
        return [
            (b"access-control-allow-origin", origin.encode()),
            (b"vary", b"Origin"),
            (b"access-control-expose-headers", _EXPOSED_HEADERS),
        ]

    def preflight(self, scope: Scope) -> Message | None:
        """The 204 start of the answer to a preflight from an allowed origin (without the CORS
        headers of `headers_for`, which the gateway adds to every answer), or None when this
        is no such preflight."""
        if scope["method"] != "OPTIONS" or self._allowed_origin(scope) is None:
            return None
        requested = header(scope, b"access-control-request-method")
        if requested is None:
            return None
        allow_headers = header(scope, b"access-control-request-headers") or ""
        return {
            "type": "http.response.start",
            "status": 204,
            "headers": [
                (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE"),
                (b"access-control-allow-headers", allow_headers.encode()),
                (b"access-control-max-age", b"600"),
            ],
        }
