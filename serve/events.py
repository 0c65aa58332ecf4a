"""Delivering the outbox: in-process subscribers, provider notification streams, metrics.

Every market change writes its events to the `outbox` table in its own transaction (see
serve/market.py), each with a unique event id. `EventHub.run` tails that table by sequence
number (from the last row at start: history is not replayed to new listeners) and hands every
event, in commit order, to each subscriber. Tailing the table rather than publishing from the
request path means an event is delivered only after its transaction committed, that the closer,
the routes and every worker process share one path, and that a crash between commit and
delivery loses nothing for a subscriber that resumes with `Last-Event-ID`.

Fan-out across processes: the outbox is the shared database's (one SQLite file, or PostgreSQL
for several processes on several hosts), and its sequence numbers are in commit order on both
backends (serve/stores/market_db.py), so every process's hub sees every event, whichever process
committed it: a provider whose stream is open on one process hears the award made on another.

Provider notifications (`GET /v1/notifications/stream`, opened with the provider key) route:
- `work.submitted` to every provider in the event's `recipients` (matched subscriptions);
- `contract.awarded` to the winner, and as `bid.lost` to every loser; `work.unfilled` as
  `bid.lost` to every bidder;
- other contract and settlement events to the contract's provider.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest

from serve.middleware._asgi import ASGIApp, Message, Receive, Scope, Send
from serve.stores.market_db import MarketDb

OUTBOX_ROWS_PER_POLL_MAX = 500
SUBSCRIBER_QUEUE_MAX = 1_000
HEARTBEAT_S = 15.0
_log = logging.getLogger("aex.serve")


@dataclass(frozen=True, slots=True)
class Delivered:
    seq: int
    event_id: str
    type: str
    subject_id: str
    occurred_at_ms: int
    payload: dict[str, Any]

    def to_json(self) -> dict[str, object]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "subject_id": self.subject_id,
            "occurred_at_ms": self.occurred_at_ms,
            "payload": self.payload,
        }


Listener = Callable[[Delivered], None]


@dataclass
class EventHub:
    db: MarketDb
    poll_ms: int = 50
    listeners: list[Listener] = field(default_factory=list)
    last_seq: int = -1

    def start_position(self) -> int:
        return self.db.outbox_head()

    def read_after(self, seq: int) -> list[Delivered]:
        rows = self.db.outbox_after(seq, OUTBOX_ROWS_PER_POLL_MAX)
        return [Delivered(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    async def run(self) -> None:
        if self.last_seq < 0:
            self.last_seq = await asyncio.to_thread(self.start_position)
        while True:
            try:
                batch = await asyncio.to_thread(self.read_after, self.last_seq)
            except Exception:
                _log.exception("outbox tail")
                batch = []
            for event in batch:
                self.last_seq = event.seq
                for listener in list(self.listeners):
                    try:
                        listener(event)
                    except Exception:
                        _log.exception("event listener")
            if len(batch) < OUTBOX_ROWS_PER_POLL_MAX:
                await asyncio.sleep(self.poll_ms / 1000)

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)


def notification_for(provider_id: str, event: Delivered) -> str | None:
    """The SSE event name this provider hears for `event`, or None (not for it)."""
    payload = event.payload
    if event.type == "work.submitted":
        return event.type if provider_id in payload.get("recipients", ()) else None
    if event.type in ("contract.awarded", "work.unfilled") and provider_id in payload.get(
        "losers", ()
    ):
        return "bid.lost"
    if event.type.startswith(("contract.", "settlement.")):
        return event.type if payload.get("provider_id") == provider_id else None
    return None


async def provider_stream(
    hub: EventHub, provider_id: str, last_event_seq: int | None
) -> AsyncIterator[dict[str, str]]:
    """SSE messages for one provider: missed events since Last-Event-ID, then live ones."""
    queue: asyncio.Queue[Delivered] = asyncio.Queue(SUBSCRIBER_QUEUE_MAX)

    def listener(event: Delivered) -> None:
        if notification_for(provider_id, event) is not None and not queue.full():
            queue.put_nowait(event)

    hub.subscribe(listener)
    boundary = hub.last_seq  # later events reach the queue: replay only up to here
    try:
        yield {"event": "ready", "data": json.dumps({"provider_id": provider_id})}
        if last_event_seq is not None:
            replayed = await asyncio.to_thread(hub.read_after, last_event_seq)
            for event in replayed:
                if event.seq <= boundary:
                    name = notification_for(provider_id, event)
                    if name is not None:
                        yield _message(name, event)
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                yield {"comment": "keep-alive"}
                continue
            name = notification_for(provider_id, event)
            assert name is not None
            yield _message(name, event)
    finally:
        hub.unsubscribe(listener)


def _message(name: str, event: Delivered) -> dict[str, str]:
    return {"event": name, "id": str(event.seq), "data": json.dumps(event.to_json())}


# ---------------------------------------------------------------------------------------------
# Metrics


class MarketMetrics:
    """Prometheus counters fed by the outbox (one registry per application)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "aex_http_requests",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "aex_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )
        self.events = Counter(
            "aex_events", "Outbox events delivered, by type", ["type"], registry=self.registry
        )
        self.bids = Counter("aex_bids_submitted", "Bids accepted", registry=self.registry)
        self.awards = Counter("aex_contracts_awarded", "Contracts awarded", registry=self.registry)
        self.settlements = Counter(
            "aex_settlements_completed", "Settlements completed", registry=self.registry
        )
        self.gmv = Counter(
            "aex_gmv", "Gross merchandise value settled", ["currency"], registry=self.registry
        )
        self.fees = Counter(
            "aex_platform_fees", "Platform fees earned", ["currency"], registry=self.registry
        )

    def on_event(self, event: Delivered) -> None:
        self.events.labels(event.type).inc()
        if event.type == "bid.submitted":
            self.bids.inc()
        elif event.type == "contract.awarded":
            self.awards.inc()
        elif event.type == "settlement.completed":
            self.settlements.inc()
            price, fee = event.payload["price"], event.payload["fee"]
            self.gmv.labels(price["currency"]).inc(float(price["amount"]))
            self.fees.labels(fee["currency"]).inc(float(fee["amount"]))

    def exposition(self) -> bytes:
        # This application's market counters, then the process-wide default registry (the
        # Redis fail-open counter of serve/stores/redis_shared.py, process and GC metrics).
        return generate_latest(self.registry) + generate_latest(REGISTRY)


UNMATCHED_ROUTE = "<unmatched>"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RouteLabels:
    """The `route` label of a request: the template of the route it addresses
    (`/v1/work/{work_id}`), or `<unmatched>` for every path no route serves, so that the number
    of series is bounded by the application's routes, whatever paths clients send. Matched
    per segment as the router does: a literal segment wins over a parameter
    (`/v1/certificates/usage` over `/v1/certificates/{cert_id}`)."""

    def __init__(self, templates: Iterable[str]) -> None:
        self._by_length: dict[int, list[tuple[tuple[str | None, ...], str]]] = {}
        for template in sorted(set(templates)):
            parts = tuple(None if part.startswith("{") else part for part in _segments(template))
            self._by_length.setdefault(len(parts), []).append((parts, template))

    def label(self, path: str) -> str:
        segments = _segments(path)
        best: tuple[tuple[bool, ...], str] | None = None
        for parts, template in self._by_length.get(len(segments), ()):
            if all(part is None or part == seg for part, seg in zip(parts, segments, strict=True)):
                rank = tuple(part is not None for part in parts)
                if best is None or rank > best[0]:
                    best = (rank, template)
        return UNMATCHED_ROUTE if best is None else best[1]


def _segments(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)


class MetricsMiddleware:
    """Counts every HTTP request and its latency (outermost, so refusals count too)."""

    def __init__(self, app: ASGIApp, metrics: MarketMetrics, routes: RouteLabels) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        status = [500]

        async def send_tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        finally:
            route = self.routes.label(scope["path"])
            method = scope["method"] if scope["method"] in HTTP_METHODS else "OTHER"
            self.metrics.requests.labels(method, route, str(status[0])).inc()
            self.metrics.latency.labels(method, route).observe(loop.time() - started)
