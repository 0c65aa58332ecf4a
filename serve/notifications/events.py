"""Delivering the outbox: in-process subscribers, provider notification streams, metrics.

Every market change writes its events to the `outbox` table in its own transaction (see
serve/market/usecases.py), each with a unique event id. `EventHub.run` tails that table by sequence
number (from the last row at start: history is not replayed to new listeners) and hands every
event, in commit order, to each subscriber. Tailing the table rather than publishing from the
request path means an event is delivered only after its transaction committed, that the closer,
the routes and every worker process share one path, and that a crash between commit and
delivery loses nothing for a subscriber that resumes with `Last-Event-ID`.

Fan-out across processes: the outbox is the shared database's (one SQLite file, or PostgreSQL
for several processes on several hosts), and its sequence numbers are in commit order on both
backends (serve/stores/market_db.py), so every process's hub sees every event, whichever process
committed it: a provider whose stream is open on one process hears the award made on another.

Provider notifications (`GET /v1/notifications/stream`, opened with the provider key) are
each provider's own view of an event, `aex.core.notifications.provider_notification` (the
sealed-bid disclosure policy of docs/market.md): `work.submitted` to the providers whose
subscriptions matched, `contract.awarded` to the winner and `bid.lost` (its own outcome only)
to every loser, contract and settlement events to the contract's provider. The routing facts
(`recipients`, `losers`) stay in the outbox; no stream, webhook or dead letter carries them.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.multiprocess import MultiProcessCollector

from aex.core import limits
from aex.core.notifications import Notification, provider_notification
from serve.breakers import log_failure
from serve.gateway.problems import FieldError, ProblemError
from serve.identity.security import Principal
from serve.stores.base import KeyStore
from serve.stores.market_db import MarketDb, OutboxRead, OutboxRow

# A measurement taken in a market transaction, reported after its COMMIT: (name, seconds).
Measure = tuple[str, float]

OUTBOX_ROWS_PER_POLL_MAX = 500
SUBSCRIBER_QUEUE_MAX = 1_000
HEARTBEAT_S = 15.0
# How often an open stream's credential is checked again (AEX_STREAM_REAUTHORISE_S): a revoked
# key or a suspended tenant loses its open streams at most this late.
STREAM_REAUTHORISE_S_DEFAULT = 30.0
_log = logging.getLogger("aex.serve")


@dataclass(frozen=True, slots=True)
class Delivered:
    seq: int
    event_id: str
    type: str
    subject_id: str
    occurred_at_ms: int
    payload: dict[str, Any]
    traceparent: str | None = None  # of the write that recorded it (serve/telemetry/tracing.py)

    @classmethod
    def from_outbox(cls, row: OutboxRead) -> Delivered:
        return cls(
            seq=row.seq,
            event_id=row.event_id,
            type=row.type,
            subject_id=row.subject_id,
            occurred_at_ms=row.occurred_at_ms,
            payload=json.loads(row.payload),
            traceparent=row.traceparent,
        )

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
        return [Delivered.from_outbox(row) for row in rows]

    async def run(self) -> None:
        while True:
            try:
                if self.last_seq < 0:  # a failure here is retried, like every read below
                    self.last_seq = await asyncio.to_thread(self.start_position)
                batch = await asyncio.to_thread(self.read_after, self.last_seq)
            except Exception:
                log_failure(_log, "outbox tail")
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


@dataclass
class DurableTail:
    """The outbox from a cursor saved in the database under `name` (the relay cursors' table),
    for a consumer that must see every committed event, across restarts: each batch is handed
    to `consume` and awaited, then the cursor is saved, so that an event committed but not yet
    consumed when the process stops is consumed at the next start (by it or another process:
    the cursor is shared and only moves forward). The consumer must take a replay (a stop
    between the consumption and the save replays the batch). Its first start ever begins at
    the outbox's head, as the in-memory hub does, not at the beginning of history."""

    db: MarketDb
    name: str
    consume: Callable[[list[Delivered]], Awaitable[None]]
    poll_ms: int = 50

    def start_position(self) -> int:
        saved = self.db.saved_cursor(self.name)
        if saved is not None:
            return saved
        head = self.db.outbox_head()
        self.db.save_relay_cursor(self.name, head)
        return head

    async def run(self) -> None:
        last_seq = -1
        while True:
            try:
                if last_seq < 0:  # a failure here is retried, like every read below
                    last_seq = await asyncio.to_thread(self.start_position)
                rows = await asyncio.to_thread(
                    self.db.outbox_after, last_seq, OUTBOX_ROWS_PER_POLL_MAX
                )
            except Exception:
                log_failure(_log, f"{self.name} outbox tail")
                rows = []
            if rows:
                batch = [Delivered.from_outbox(row) for row in rows]
                try:
                    await self.consume(batch)
                except Exception:  # a bug in the consumer: logged, the batch is not replayed
                    _log.exception("%s outbox consumer", self.name)
                last_seq = batch[-1].seq
                try:
                    await asyncio.to_thread(self.db.save_relay_cursor, self.name, last_seq)
                except Exception:  # saved with the next batch; a restart meanwhile replays
                    log_failure(_log, f"{self.name} cursor")
            if len(rows) < OUTBOX_ROWS_PER_POLL_MAX:
                await asyncio.sleep(self.poll_ms / 1000)


def notification_for(provider_id: str, event: Delivered) -> Notification | None:
    """This provider's view of `event` (its name and what it may see), or None."""
    return provider_notification(provider_id, event.type, event.subject_id, event.payload)


def notification_json(event: Delivered, note: Notification) -> dict[str, object]:
    """The body a provider receives (SSE data, webhook body, dead letter): the event's id and
    time, and the provider's own view of it."""
    return {
        "event_id": event.event_id,
        "type": note.name,
        "subject_id": note.subject_id,
        "occurred_at_ms": event.occurred_at_ms,
        "payload": dict(note.payload),
    }


class StreamSlot:
    """One open stream's place in its key's count; released once (by the stream's end, or
    when the stream is dropped before it ever started)."""

    def __init__(self, gate: StreamGate, key_id: str) -> None:
        self._release = weakref.finalize(self, gate._release, key_id)

    def release(self) -> None:
        self._release()


@dataclass
class StreamGate:
    """Who may hold a notification stream open: at most `streams_per_key_max` per key in this
    process (429 beyond), and only while the credential stays valid, re-checked against the
    store (not the key cache) every `reauthorise_s`."""

    store: KeyStore
    reauthorise_s: float = STREAM_REAUTHORISE_S_DEFAULT
    streams_per_key_max: int = limits.notification_streams_per_key_max
    _open: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, key_id: str) -> StreamSlot:
        with self._lock:
            if self._open.get(key_id, 0) >= self.streams_per_key_max:
                raise ProblemError(
                    429,
                    "too-many-streams",
                    f"at most {self.streams_per_key_max} open streams per key",
                    errors=(FieldError("notification_streams", "streams_per_key_max"),),
                    headers={"Retry-After": str(int(HEARTBEAT_S))},
                )
            self._open[key_id] = self._open.get(key_id, 0) + 1
        return StreamSlot(self, key_id)

    def open_streams(self, key_id: str) -> int:
        with self._lock:
            return self._open.get(key_id, 0)

    def _release(self, key_id: str) -> None:
        with self._lock:
            left = self._open.get(key_id, 0) - 1
            if left > 0:
                self._open[key_id] = left
            else:
                self._open.pop(key_id, None)

    def still_authorised(self, principal: Principal) -> bool:
        """The stream's key is not revoked and its tenant is active (read from the store)."""
        if principal.tenant_id is None or principal.key_id is None:
            return False
        tenant = self.store.get_tenant(principal.tenant_id)
        if tenant is None or tenant.status != "ACTIVE":
            return False
        keys = self.store.list_keys(principal.tenant_id)
        key = next((k for k in keys if k.key_id == principal.key_id), None)
        return key is not None and key.revoked_at_ms is None


async def provider_stream(
    hub: EventHub,
    provider_id: str,
    last_event_seq: int | None,
    *,
    slot: StreamSlot | None = None,
    authorised: Callable[[], Awaitable[bool]] | None = None,
    reauthorise_s: float = STREAM_REAUTHORISE_S_DEFAULT,
) -> AsyncIterator[dict[str, str]]:
    """SSE messages for one provider: missed events since Last-Event-ID, then live ones; the
    stream ends (after a `closed` event) once `authorised` says the credential is no longer
    valid, checked every `reauthorise_s`."""
    queue: asyncio.Queue[Delivered] = asyncio.Queue(SUBSCRIBER_QUEUE_MAX)
    next_check = time.monotonic() + reauthorise_s
    next_beat = time.monotonic() + HEARTBEAT_S

    def listener(event: Delivered) -> None:
        if notification_for(provider_id, event) is not None and not queue.full():
            queue.put_nowait(event)

    hub.subscribe(listener)
    boundary = hub.last_seq  # later events reach the queue: replay only up to here
    try:
        yield {"event": "ready", "data": json.dumps({"provider_id": provider_id})}
        if last_event_seq is not None:
            for message in await asyncio.to_thread(
                _replay, hub, provider_id, last_event_seq, boundary
            ):
                yield message
        while True:
            if authorised is not None and time.monotonic() >= next_check:
                if not await authorised():
                    reason = {"reason": "credential_no_longer_valid"}
                    yield {"event": "closed", "data": json.dumps(reason)}
                    return
                next_check = time.monotonic() + reauthorise_s
            now = time.monotonic()
            if now >= next_beat:
                yield {"comment": "keep-alive"}  # a dropped client is noticed at this write
                next_beat = now + HEARTBEAT_S
            wait_s = max(min(next_beat, next_check) - now, 0.0)
            try:
                event = await asyncio.wait_for(queue.get(), wait_s)
            except TimeoutError:
                continue
            note = notification_for(provider_id, event)
            assert note is not None
            yield _message(note, event)
            next_beat = time.monotonic() + HEARTBEAT_S
    finally:
        hub.unsubscribe(listener)
        if slot is not None:
            slot.release()


def _replay(hub: EventHub, provider_id: str, after: int, boundary: int) -> list[dict[str, str]]:
    # The provider's missed events after Last-Event-ID, up to where the live queue starts.
    found = []
    for event in hub.read_after(after):
        note = notification_for(provider_id, event) if event.seq <= boundary else None
        if note is not None:
            found.append(_message(note, event))
    return found


def _message(note: Notification, event: Delivered) -> dict[str, str]:
    data = json.dumps(notification_json(event, note))
    return {"event": note.name, "id": str(event.seq), "data": data}


# ---------------------------------------------------------------------------------------------
# Metrics


# Buckets (seconds) of the market's own histograms: a window closes within a poll interval of
# its deadline (AEX_WINDOW_POLL_MS, 250 ms by default), a settlement follows its award by the
# work's own duration (seconds to hours), a webhook attempt ends within WEBHOOK_TIMEOUT_S.
WINDOW_CLOSE_LAG_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
SETTLEMENT_LATENCY_BUCKETS_S = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0)
WEBHOOK_DELIVERY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# How a webhook attempt ended (the `outcome` label, a bounded set: never a host or a URL).
WEBHOOK_OUTCOMES = frozenset(
    {
        "delivered",
        "http_4xx",
        "http_5xx",
        "http_other",
        "connect_failed",
        "timeout",
        "request_failed",
    }
)


def multiprocess_dir() -> str | None:
    """The directory of prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by
    `aex serve --workers N` before the workers start), or None for one process."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class MarketMetrics:
    """The market's Prometheus metrics (one registry per application).

    Event counters are counted by the process that committed the event (`on_commit`, called by
    `Market.write` after COMMIT), not by the outbox tail: every process tails every event, so
    counting there would count each event once per worker in a node-wide scrape.
    """

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
            "aex_events", "Outbox events committed, by type", ["type"], registry=self.registry
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
        self.window_close_lag = Histogram(
            "aex_window_close_lag_seconds",
            "Time from a work's bid window deadline to the window's close and evaluation",
            buckets=WINDOW_CLOSE_LAG_BUCKETS_S,
            registry=self.registry,
        )
        self.settlement_latency = Histogram(
            "aex_settlement_latency_seconds",
            "Time from a contract's award to its settlement",
            buckets=SETTLEMENT_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.webhook_delivery = Histogram(
            "aex_webhook_delivery_duration_seconds",
            "Webhook delivery attempts (one per connection made) by outcome",
            ["outcome"],
            buckets=WEBHOOK_DELIVERY_BUCKETS_S,
            registry=self.registry,
        )
        self.webhook_breaker_skips = Counter(
            "aex_webhook_attempts_skipped",
            "Webhook attempts not made because the host's circuit breaker was open",
            registry=self.registry,
        )

    def on_commit(self, rows: Iterable[OutboxRow], measures: Iterable[Measure]) -> None:
        """One committed transaction's events and measurements (serve/market/usecases.py)."""
        for row in rows:
            self.events.labels(row.type).inc()
            if row.type == "bid.submitted":
                self.bids.inc()
            elif row.type == "contract.awarded":
                self.awards.inc()
            elif row.type == "settlement.completed":
                self.settlements.inc()
                payload = json.loads(row.payload)
                price, fee = payload["price"], payload["fee"]
                self.gmv.labels(price["currency"]).inc(float(price["amount"]))
                self.fees.labels(fee["currency"]).inc(float(fee["amount"]))
        for name, seconds in measures:
            if name == "window_close_lag":
                self.window_close_lag.observe(max(seconds, 0.0))
            elif name == "settlement_latency":
                self.settlement_latency.observe(max(seconds, 0.0))

    def on_webhook_attempt(self, outcome: str, seconds: float) -> None:
        assert outcome in WEBHOOK_OUTCOMES, outcome
        self.webhook_delivery.labels(outcome).observe(seconds)

    def exposition(self) -> bytes:
        directory = multiprocess_dir()
        if directory is not None:
            # Every worker's values, from the files they write in the shared directory: one
            # scrape shows the whole node (process and GC metrics are per process: left out).
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        # This application's market counters, then the process-wide default registry (the
        # Redis fail-open counter of serve/stores/redis_shared.py, process and GC metrics).
        return generate_latest(self.registry) + generate_latest(REGISTRY)


def reap_dead_metric_processes() -> None:
    """Drops the live gauges of worker processes that are gone (a worker killed and replaced
    by uvicorn does not run its own shutdown); a no-op outside multiprocess mode."""
    directory = multiprocess_dir()
    if directory is None:
        return
    pids = set()
    for path in Path(directory).glob("gauge_live*_*.db"):
        found = path.stem.rsplit("_", 1)[1]
        if found.isdigit():
            pids.add(int(found))
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, another user's


def metrics_process_exit() -> None:
    """This worker is stopping: its live gauges leave the node's scrape."""
    directory = multiprocess_dir()
    if directory is not None:
        multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


UNMATCHED_ROUTE = "<unmatched>"
# Labels of the most recent paths, kept: a request asks for its path's label in several layers
# (metrics, tracing, the unknown-path refusal, Location), and most paths repeat.
ROUTE_LABELS_CACHED_MAX = 4_096
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RouteLabels:
    """The `route` label of a request: the template of the route it addresses
    (`/v1/work/{work_id}`), or `<unmatched>` for every path no route serves, so that the number
    of series is bounded by the application's routes, whatever paths clients send. Matched
    per segment as the router does: a literal segment wins over a parameter
    (`/v1/certificates/usage` over `/v1/certificates/{cert_id}`), and a `{name:path}`
    parameter (static assets) takes the rest of the path. Templates come as Litestar writes
    `route.path` (`/v1/work/{work_id:str}`); labels drop the types."""

    def __init__(self, templates: Iterable[str]) -> None:
        self._by_length: dict[int, list[tuple[tuple[str | None, ...], str]]] = {}
        self._prefixed: list[tuple[tuple[str | None, ...], str]] = []  # ending in {x:path}
        for template in sorted(set(templates)):
            segments = _segments(template)
            label = "/" + "/".join(_TYPE.sub("}", seg) for seg in segments)
            if segments and segments[-1].endswith(":path}"):
                parts = tuple(None if seg.startswith("{") else seg for seg in segments[:-1])
                self._prefixed.append((parts, label))
                continue
            parts = tuple(None if seg.startswith("{") else seg for seg in segments)
            self._by_length.setdefault(len(parts), []).append((parts, label))
        self.label: Callable[[str], str] = functools.lru_cache(ROUTE_LABELS_CACHED_MAX)(self._label)

    def _label(self, path: str) -> str:
        segments = _segments(path)
        best: tuple[tuple[bool, ...], str] | None = None
        for parts, template in self._by_length.get(len(segments), ()):
            if all(part is None or part == seg for part, seg in zip(parts, segments, strict=True)):
                rank = tuple(part is not None for part in parts)
                if best is None or rank > best[0]:
                    best = (rank, template)
        if best is not None:
            return best[1]
        for parts, template in self._prefixed:
            head = segments[: len(parts)]
            if len(segments) > len(parts) and all(
                part is None or part == seg for part, seg in zip(parts, head, strict=True)
            ):
                return template
        return UNMATCHED_ROUTE

    def serves(self, path: str) -> bool:
        """Whether some route serves `path` (whatever the method)."""
        return self.label(path) != UNMATCHED_ROUTE


_TYPE = re.compile(r":[a-z]+\}$")


def _segments(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)


class RequestMetrics:
    """Counts every HTTP request and its latency, refusals too (the gateway records each
    request last, serve/gateway/pipeline.py)."""

    def __init__(self, metrics: MarketMetrics, routes: RouteLabels) -> None:
        self.metrics = metrics
        self.routes = routes
        # This app's series, kept (bounded by its routes): not a cache on the class, which
        # would keep every app's metrics alive.
        self._series = functools.lru_cache(ROUTE_LABELS_CACHED_MAX)(self._labelled)

    def record(self, method: str, path: str, status: int, latency_s: float) -> None:
        counted, timed = self._series(
            method if method in HTTP_METHODS else "OTHER", self.routes.label(path), status
        )
        counted.inc()
        timed.observe(latency_s)

    def _labelled(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """The labelled counter and histogram of a (method, route, status): bounded by the
        routes, so kept (prometheus_client's `labels` costs a lock and a tuple per call)."""
        return (
            self.metrics.requests.labels(method, route, str(status)),
            self.metrics.latency.labels(method, route),
        )
