"""The gateway: the spec's production middleware stack in one ASGI layer.

Spec "Production Middleware Stack": "1. RequestID → Generate unique trace ID 2. Logging →
Structured JSON request/response logs 3. Recovery → Catch panics, return 500 4. CORS →
Cross-origin headers (configurable origins) 5. Timeout → 30s max request duration
6. RateLimit → Redis-backed, per-tenant enforcement 7. Auth → API key or JWT validation".
Around them, the exchange's own: the request metrics and the request's trace span (so refusals
are counted and traced too), and, before any credential is read, the unknown-path 404.

They run in that order in one coroutine with one wrapper on the answer's way out, which is
where every answer, a refusal of any layer included, gets its headers: the route's own, then
the rate limit's (once it has decided), CORS's (for an allowed origin), then `X-Request-ID`.
(They were ten ASGI middlewares, each with its frame, its wrapper and a copy of the headers on
the way out: 87 µs of a balance read's 271, docs/performance.md.) What each layer decides
lives in its own module: the request id, the access line and CORS in serve/gateway/edge.py,
the rate limit and the credential in serve/gateway/middleware.py (`Admission`), the span in
serve/telemetry/tracing.py, the series in serve/notifications/events.py. Inside the gateway:
`Location` and idempotency (serve/gateway/locations.py, middleware.py), then Litestar.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from serve.gateway.asgi import ASGIApp, Message, Receive, Scope, Send, send_problem
from serve.gateway.edge import AccessLog, Cors, request_id_of
from serve.gateway.middleware import STREAMING_PATHS, Admission, counting
from serve.gateway.problems import REQUEST_ID_SCOPE_KEY, ProblemError, problem_for_outage
from serve.notifications.events import RequestMetrics, RouteLabels
from serve.telemetry import logs, tracing
from serve.telemetry.tracing import RequestSpan

_log = logging.getLogger("aex.serve")
# A hot route: a GET answered by the gateway, after admission, without Litestar's per-request
# objects (the router, the Request, parameters and dependencies, the Response): its JSON body,
# 200, or None when the request is not its plain case, which then goes to the Litestar route
# of the same path, the route's contract and its OpenAPI declaration. A hot route refuses
# nothing itself: every refusal is the Litestar route's.
HotRoute = Callable[[Scope], bytes | None]
_JSON = (b"content-type", b"application/json")


class Gateway:
    """The application's outermost ASGI layer: the spec's stack, then `app` (serve/app.py)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: RouteLabels,
        metrics: RequestMetrics,
        admission: Admission,
        cors: Cors,
        timeout_s: float,
        hot_routes: Mapping[str, HotRoute] | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.app = app
        self.routes = routes
        self.metrics = metrics
        self.admission = admission
        self.cors = cors
        self.timeout_s = timeout_s
        self.hot_routes = dict(hot_routes or {})  # by path, GET only
        self.access_log = access_log or AccessLog()
        self._timeout = f"no answer within {timeout_s:g} s"
        self._deadlines = Deadlines(timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_s = time.perf_counter()
        # 1. The request id, in the scope and in every log line written meanwhile.
        request_id = request_id_of(scope)
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        id_token = logs.REQUEST_ID.set(request_id)
        span = RequestSpan.start(scope, self.routes.label)
        # What every answer carries beyond the route's own: the rate limit's headers (appended
        # by the admission, once it has decided), CORS's, the request id.
        rate_headers: list[tuple[bytes, bytes]] = []
        tail_headers = [*self.cors.headers_for(scope), (b"x-request-id", request_id.encode())]
        status: int | None = None

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *rate_headers, *tail_headers]
            await send(message)

        escaped: BaseException | None = None
        streaming = scope["path"] in STREAMING_PATHS  # long-lived by design (server-sent events)
        try:
            if streaming:
                await self._run(scope, receive, answer, rate_headers)
            else:
                # 5. The timeout: 504 problem+json unless the answer had begun (then it is cut).
                await self._deadlines.run(self._run(scope, receive, answer, rate_headers))
        except Exception as error:
            if status is None and not streaming and isinstance(error, TimeoutError):
                await send_problem(scope, answer, ProblemError(504, "timeout", self._timeout))
                return
            # 3. Recovery: a dependency down is no bug (no stack trace); anything else is
            # logged with its trace and answered 500 problem+json, without a trace.
            outage = problem_for_outage(error)
            if outage is None:
                _log.exception("unhandled error in the gateway")
            if status is not None:  # the answer had begun: the connection is cut
                escaped = error
                raise
            await send_problem(
                scope, answer, outage or ProblemError(500, "internal-error", "the request failed")
            )
        except BaseException as error:  # cancelled: the server is stopping or the client left
            escaped = error
            raise
        finally:
            latency_s = time.perf_counter() - started_s
            sent = 500 if status is None else status
            # 2. The access line, with the trace ids, before the span ends.
            self.access_log.request(scope, sent, latency_s, tracing.trace_ids())
            if span is not None:
                span.end(status, escaped)
            logs.REQUEST_ID.reset(id_token)
            self.metrics.record(scope["method"], scope["path"], sent, latency_s)

    async def _run(
        self, scope: Scope, receive: Receive, answer: Send, rate_headers: list[tuple[bytes, bytes]]
    ) -> None:
        # 4. A CORS preflight from an allowed origin is answered here, for any path.
        if (preflight := self.cors.preflight(scope)) is not None:
            await answer(preflight)
            await answer({"type": "http.response.body", "body": b""})
            return
        # A path no route serves is 404 `not-found` for everyone, before any credential is
        # read: a client with no key, a wrong key or the operator's learns the same (the paths
        # that exist are public, in the OpenAPI document), and no rate limit or key lookup is
        # spent on it.
        if not self.routes.serves(scope["path"]):
            await send_problem(scope, answer, ProblemError(404, "not-found", "no such path"))
            return
        # 6, 7. The rate limit, then the credential.
        admitted = self.admission.admit(scope, rate_headers)
        if isinstance(admitted, ProblemError):
            await send_problem(scope, answer, admitted)
            return
        hot = self.hot_routes.get(scope["path"]) if scope["method"] == "GET" else None
        if hot is not None and (body := hot(scope)) is not None:
            await answer(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [_JSON, (b"content-length", str(len(body)).encode())],
                }
            )
            await answer({"type": "http.response.body", "body": body})
            return
        await self.app(scope, counting(receive, admitted), answer)


class Deadlines:
    """The request timeout of every request in flight, kept by one timer for all of them: a
    request registers its task and deadline (a dict entry, not a timer of its own as
    `asyncio.timeout` schedules: 4.6 µs a request here), and a sweep every
    `tick_s` cancels the tasks whose deadline has passed, so that a request is cut at most
    `tick_s` (a twentieth of the timeout, 50 ms to 1 s) after its deadline. The sweep runs only
    while requests are in flight."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.tick_s = min(max(timeout_s / 20, 0.05), 1.0)
        self._due: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._sweep_loop: asyncio.AbstractEventLoop | None = None  # where a sweep is due

    async def run(self, request: Awaitable[None]) -> None:
        """Awaits `request`, cancelled once its deadline has passed: TimeoutError then, as
        `asyncio.timeout` raises it (a cancellation of another origin stays one)."""
        task = self._enter()
        try:
            await request
        except asyncio.CancelledError:
            if task not in self._expired or task.uncancel() > 0:
                raise
            raise TimeoutError from None
        finally:
            self._due.pop(task, None)
            self._expired.discard(task)

    def _enter(self) -> asyncio.Task[object]:
        task = asyncio.current_task()
        assert task is not None, "a request runs in a task"
        loop = asyncio.get_running_loop()
        self._due[task] = loop.time() + self.timeout_s
        if self._sweep_loop is not loop:
            self._sweep_loop = loop
            loop.call_later(self.tick_s, self._sweep, loop)
        return task

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, due in list(self._due.items()):
            if due <= now:
                del self._due[task]
                self._expired.add(task)
                task.cancel()
        if self._due:
            loop.call_later(self.tick_s, self._sweep, loop)
        else:
            self._sweep_loop = None
