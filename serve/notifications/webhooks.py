"""Webhook notifications: the SSE stream's events, POSTed to a provider's `endpoint`.

Each delivery is `POST <endpoint>` with the event as JSON and three headers:
- `X-AEX-Event-Id`: the outbox event id (deduplicate on it: a delivery may repeat);
- `X-AEX-Timestamp`: Unix seconds when this attempt was signed;
- `X-AEX-Signature`: `sha256=` + hex HMAC-SHA256 over `<timestamp>.<body>`, keyed with the
  provider's webhook signing secret (`aex_whsec_...`, shown once at registration or by
  `POST /v1/providers/{id}/webhook-secret`). It is a secret of its own, not derived from the
  api secret; the database holds it only sealed under the key in D/webhook.key
  (serve/secret_box.py), so reading the database is not enough to forge a signature. A
  provider without one (made before it existed) gets no webhooks until its owner makes one.
A receiver refuses a timestamp more than WEBHOOK_REPLAY_WINDOW_S (5 minutes) from its clock,
and a signature that does not match (aex/core/webhook_signing.py is the rule, both ways).

A 2xx answer delivers; anything else (or no answer within WEBHOOK_TIMEOUT_S) is retried after
backoff_ms × 2^(attempt−1), at most WEBHOOK_ATTEMPTS_MAX attempts. Every attempt's outcome is
recorded in `webhook_deliveries` and the provider reads them at
`GET /v1/notifications/deliveries`.

Where it connects (serve/notifications/endpoints.py, aex/core/endpoints.py): before every attempt
the endpoint's host is resolved and every address checked (no loopback, private, link-local,
metadata, ... unless AEX_WEBHOOK_ALLOW_PRIVATE=1); the request goes to the checked address only
(Host header and TLS name from the URL), never through an environment proxy, never following
a redirect. What the provider is shown of a failed attempt is coarse, never the OS error text:
"address_refused", "dns_failed", "connect_failed", "timeout", "request_failed" or
"http_status_<code>", or "circuit_open"; the endpoint in records, events and logs is
`redacted_url` (no credentials, query or fragment).

Circuit breakers (serve/breakers.py, the rule in aex/core/breaker.py): each endpoint origin has
one, `webhook:<host>:<port>`, in each process (a host's services on other ports are other
services, and fail apart). Five failed attempts in a row to one (no connection,
a timeout, or a 5xx/429 answer) open it for 10 s: attempts to that host due meanwhile are not
made (no connection; recorded with last_error "circuit_open" and retried or dead-lettered by
the same schedule as a failed attempt); the first attempt after 10 s is the one probe, whose
success closes it. A host's breaker does not touch another host's deliveries. Every attempt
that connects is timed into `aex_webhook_delivery_duration_seconds{outcome}`
(serve/notifications/events.py).

Several processes: every process tails the shared outbox (serve/notifications/events.py), so
each sees every event; the first to insert the (event, provider) row of `webhook_deliveries`
(status PENDING, `ON CONFLICT DO NOTHING`) delivers it, and the others leave it. A delivery
that failed every attempt is dead-lettered: in the transaction that records it FAILED, a
`notification.dead_lettered` event goes to the outbox, which the NATS relay publishes on
"aex.notification.dead_lettered.<provider_id>" (the NOTIFICATIONS stream) with the original
event in its payload, for an operator to inspect and replay. A process that dies between its
claim and the last attempt leaves the record PENDING or RETRYING; once it has not moved for
`lease_ms` (AEX_WEBHOOK_LEASE_MS, default 60 s), any process takes it over (compare-and-set on
the record, so one does) and resumes at the next attempt. The record's `updated_at_ms` is the
lease's fencing token: the holder renews it before each retry and records each attempt only
while it still reads as the holder last wrote it, so a process that was merely slow past the
lease stops when it finds itself taken over (at worst one attempt sent twice, never recorded or
dead-lettered twice).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from opentelemetry.trace import SpanKind

from aex.core.endpoints import redacted_url
from aex.core.events import EventType
from aex.core.notifications import provider_notifications
from aex.core.webhook_signing import (
    webhook_signature,
)
from serve.breakers import BreakerRegistry, log_failure
from serve.gateway.paging import PAGE_MAX
from serve.gateway.problems import listed
from serve.identity.security import now_ms
from serve.market.usecases import Market
from serve.notifications.endpoints import EndpointPolicy, Pinned
from serve.notifications.events import Delivered, MarketMetrics, notification_for, notification_json
from serve.secret_box import SecretBox, SecretBoxError, webhook_secret_context
from serve.stores.pages import Keyset, keyset_page, page_answer
from serve.stores.rows import scalars
from serve.telemetry import tracing

WEBHOOK_TIMEOUT_S = 5.0
WEBHOOK_ATTEMPTS_MAX = 5
WEBHOOK_BACKOFF_MS_DEFAULT = 1_000
# A claimed delivery whose record has not moved for this long belongs to a process that died:
# another process takes it over (longer than any gap between two attempts' records).
WEBHOOK_LEASE_MS_DEFAULT = 60_000
TAKEN_OVER_PER_SWEEP_MAX = 100
# A fan-out reads which recipients have a webhook this many at a time (bound parameters).
_PROVIDERS_PER_READ = 500
# Before a delivery has its record, a failed read or claim (a database blip) would lose it: no
# record, so no take-over either. Those steps are tried this often, the waits doubling from
# PRE_RECORD_BACKOFF_S (15.5 s in all), then the delivery is given up, logged with its event.
PRE_RECORD_ATTEMPTS_MAX = 6
PRE_RECORD_BACKOFF_S = 0.5
DELIVERIES_LISTED_MAX = PAGE_MAX
_DELIVERIES_KEYSET = Keyset(
    "webhook_deliveries d JOIN outbox o ON o.event_id = d.event_id", "o.seq", "d.event_id"
)


def breaker_name(host: str, port: int) -> str:
    """The breaker of an endpoint origin: `webhook:<host>:<port>` (IPv6 literals bracketed)."""
    shown = f"[{host}]" if ":" in host else host
    return f"webhook:{shown}:{port}"


CIRCUIT_OPEN = "circuit_open"  # the host's breaker is open: no connection was made
_log = logging.getLogger("aex.serve")
T = TypeVar("T")
# httpx logs every request's full URL at INFO (credentials and query included): the exchange's
# own line (redacted_url) replaces it.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)
_TLS = ssl.create_default_context()  # one context for every delivery (built once: ~10 ms each)

# Sends one signed POST to a checked address and answers the HTTP status (raises httpx errors).
Send = Callable[[Pinned, bytes, dict[str, str]], Awaitable[int]]


async def http_send(pinned: Pinned, body: bytes, headers: dict[str, str]) -> int:
    """POSTs to the pinned address: the URL's host in the Host header and TLS SNI (so the
    certificate is verified against the name), no environment proxy, no redirects."""
    async with httpx.AsyncClient(
        timeout=WEBHOOK_TIMEOUT_S, verify=_TLS, trust_env=False, follow_redirects=False
    ) as http:
        response = await http.post(
            pinned.url,
            content=body,
            headers={**headers, "host": pinned.endpoint.host_header},
            extensions={"sni_hostname": pinned.endpoint.host},
        )
        return response.status_code


def coarse_error(failure: httpx.HTTPError) -> str:
    """What a provider is told of a failed attempt: a class, never the OS's words (which
    would say whether a port is open, filtered or closed)."""
    if isinstance(failure, httpx.ConnectError | httpx.ConnectTimeout):
        return "connect_failed"
    if isinstance(failure, httpx.TimeoutException):
        return "timeout"
    return "request_failed"


def _status_outcome(code: int) -> str:
    if 400 <= code < 500:
        return "http_4xx"
    return "http_5xx" if 500 <= code < 600 else "http_other"


@dataclass(frozen=True, slots=True)
class Taken:
    """A delivery taken over: resumed at attempt `first`."""

    provider_id: str
    name: str
    event: Delivered
    target: tuple[str, str]  # endpoint, webhook secret
    first: int
    lease: int  # the record's `updated_at_ms` as the take wrote it (see `_attempts`)


# The webhook tail's saved cursor (serve/notifications/events.py `DurableTail`), beside the
# NATS relay's in the relay cursors' table.
WEBHOOK_TAIL = "webhooks"


class Webhooks:
    def __init__(
        self,
        market: Market,
        endpoints: EndpointPolicy | None = None,
        *,
        box: SecretBox,
        backoff_ms: int = WEBHOOK_BACKOFF_MS_DEFAULT,
        lease_ms: int = WEBHOOK_LEASE_MS_DEFAULT,
        send: Send = http_send,
        breakers: BreakerRegistry | None = None,
        metrics: MarketMetrics | None = None,
    ) -> None:
        assert backoff_ms > 0
        assert lease_ms > 0
        self.market = market
        self.box = box
        self.endpoints = endpoints or EndpointPolicy()
        self.send = send
        self.backoff_ms = backoff_ms
        self.lease_ms = lease_ms
        self.breakers = breakers or BreakerRegistry()
        self.metrics = metrics
        self._tasks: set[asyncio.Task[None]] = set()

    async def fan_out(self, batch: list[Delivered]) -> None:
        """The webhook tail's consumer (serve/notifications/events.py `DurableTail`): for every
        event of `batch`, each recipient's delivery claimed (recorded, so from then on the
        delivery survives this process: another takes it over) before this returns, and its
        attempts started. A replayed event claims nothing twice (the claim is unique)."""
        started = await asyncio.gather(*(self._fan_out(event) for event in batch))
        for attempts in itertools.chain.from_iterable(started):
            self._spawn(attempts)

    async def _fan_out(self, event: Delivered) -> list[Coroutine[Any, Any, None]]:
        payload = event.payload
        candidates = set(payload.get("recipients", ())) | set(payload.get("losers", ()))
        if isinstance(payload.get("provider_id"), str):
            candidates.add(payload["provider_id"])
        # One pass with the routing lists as sets (not a scan of them per recipient).
        told = list(
            provider_notifications(sorted(candidates), event.type, event.subject_id, payload)
        )
        if not told:
            return []
        # Which of them have a webhook at all: one read per chunk of providers, not a task and
        # a read per provider (a work's 10,000 recipients cost 1.5 s of CPU that way).
        done = await _until_done(
            "webhook fan-out", event, self._with_webhooks, [p for p, _ in told]
        )
        if done is None:
            return []  # given up (logged)
        (hooked,) = done
        claimed = await asyncio.gather(
            *(
                self._claimed(provider_id, note.name, event)
                for provider_id, note in told
                if provider_id in hooked
            )
        )
        return [attempts for attempts in claimed if attempts is not None]

    def _with_webhooks(self, provider_ids: list[str]) -> set[str]:
        """The providers among these with an endpoint and a webhook secret (as `_target`)."""
        found: set[str] = set()
        for low in range(0, len(provider_ids), _PROVIDERS_PER_READ):
            chunk = provider_ids[low : low + _PROVIDERS_PER_READ]
            rows = self.market.db.read(
                "SELECT provider_id FROM providers WHERE provider_id IN ("  # noqa: S608 - only "?"s
                + ", ".join("?" * len(chunk))
                + ") AND endpoint <> '' AND webhook_secret_sealed <> ''",
                chunk,
            )
            found.update(str(provider_id) for provider_id in scalars(rows))
        return found

    def _spawn(self, delivery: Any) -> None:
        task = asyncio.get_running_loop().create_task(delivery)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _target(self, provider_id: str) -> tuple[str, str] | None:
        """The endpoint and the webhook secret (opened from its sealed form, in memory only)."""
        rows = self.market.db.read(
            "SELECT endpoint, webhook_secret_sealed FROM providers WHERE provider_id = ?",
            (provider_id,),
        )
        if not rows or not rows[0][0] or not rows[0][1]:
            return None
        try:
            webhook_secret = self.box.open(
                str(rows[0][1]), context=webhook_secret_context(provider_id)
            )
        except SecretBoxError:
            _log.warning("webhook secret of %s does not open: not delivered", provider_id)
            return None
        return str(rows[0][0]), webhook_secret

    def _claim(
        self, provider_id: str, name: str, event_id: str
    ) -> tuple[tuple[str, str], int] | None:
        """The endpoint and signing key, and the lease written, when this process is the one
        to deliver."""
        target = self._target(provider_id)
        if target is None:
            return None
        endpoint, _ = target

        def write(tx: Any) -> int | None:
            claimed = tx.execute(
                "INSERT INTO webhook_deliveries VALUES (?, ?, ?, ?, 0, 'PENDING', NULL, NULL, ?)"
                " ON CONFLICT (event_id, provider_id) DO NOTHING",
                (event_id, provider_id, name, redacted_url(endpoint), tx.now_ms),
            )
            return int(tx.now_ms) if claimed.rowcount == 1 else None

        lease = self.market.write(write)
        return None if lease is None else (target, lease)

    async def _claimed(
        self, provider_id: str, name: str, event: Delivered
    ) -> Coroutine[Any, Any, None] | None:
        """The delivery's attempts, once its claim is recorded; None when there is nothing for
        this process to send (no endpoint, another process delivers it, or given up)."""
        done = await _until_done(
            "webhook claim", event, self._claim, provider_id, name, event.event_id
        )
        if done is None:
            return None  # given up (logged)
        (claimed,) = done
        if claimed is None:
            return None  # no endpoint, or another process delivers it
        target, lease = claimed
        return self._attempts(provider_id, name, event, target, first=1, lease=lease)

    async def _attempts(
        self,
        provider_id: str,
        name: str,
        event: Delivered,
        target: tuple[str, str],
        first: int,
        lease: int,
    ) -> None:
        """Attempts `first`.. while this process holds the delivery. `lease` is the record's
        `updated_at_ms` as this process last wrote it: every later write of the record is a
        compare-and-set on it (a fencing token). A process that was slow past the lease and
        taken over finds the record moved and stops, before its next attempt or at the record
        of the one in flight: one process records each attempt, one dead-letters."""
        note = notification_for(provider_id, event)
        if note is None:
            return  # not this provider's (a record from before the routing changed)
        shown_event = notification_json(event, note)
        held: int | None = lease
        for attempt in range(first, WEBHOOK_ATTEMPTS_MAX + 1):
            assert held is not None
            if attempt > first:  # renewed before each retry: the backoff does not run the lease
                held = await asyncio.to_thread(self._renew, event.event_id, provider_id, held)
                if held is None:
                    return  # taken over by another process
            held = await self._attempt_traced(
                provider_id, name, event, shown_event, target, attempt, held
            )
            if held is None:
                return  # the last one (delivered, or out of attempts), or taken over meanwhile
            await asyncio.sleep(self.backoff_ms * 2 ** (attempt - 1) / 1000)

    def _renew(self, event_id: str, provider_id: str, lease: int) -> int | None:
        """The new lease, or None when another process took the delivery over."""

        def write(tx: Any) -> int | None:
            moved = tx.execute(
                "UPDATE webhook_deliveries SET updated_at_ms = ? WHERE event_id = ?"
                " AND provider_id = ? AND updated_at_ms = ? AND status IN ('PENDING', 'RETRYING')",
                (tx.now_ms, event_id, provider_id, lease),
            )
            return int(tx.now_ms) if moved.rowcount == 1 else None

        renewed: int | None = self.market.write(write)
        return renewed

    async def _attempt_traced(
        self,
        provider_id: str,
        name: str,
        event: Delivered,
        shown_event: dict[str, object],
        target: tuple[str, str],
        attempt: int,
        lease: int,
    ) -> int | None:
        """One attempt, in a CLIENT span of the event's trace (that of the request whose write
        recorded it) and sent with its `traceparent`; the lease its record wrote, or None when
        it was the last one (delivered, or out of attempts) or the delivery was taken over."""
        endpoint, signing_key = target
        shown = redacted_url(endpoint)
        body = json.dumps({"event": name, **shown_event}, separators=(",", ":")).encode()
        attributes = {"aex.event": name, "aex.event_id": event.event_id, "aex.attempt": attempt}
        with tracing.span(
            "webhook.deliver",
            kind=SpanKind.CLIENT,
            parent=tracing.context_of(event.traceparent),
            attributes=attributes,
        ) as current:
            timestamp = int(time.time())
            headers = {
                "content-type": "application/json",
                "x-aex-event": name,
                "x-aex-event-id": event.event_id,
                "x-aex-timestamp": str(timestamp),
                "x-aex-signature": webhook_signature(signing_key, timestamp, body),
            }
            headers = tracing.headers_with_trace(headers, event.traceparent)
            code, error = await self._attempt(endpoint, body, headers)
            delivered = code is not None and 200 <= code < 300
            final = delivered or attempt == WEBHOOK_ATTEMPTS_MAX
            status = "DELIVERED" if delivered else ("FAILED" if final else "RETRYING")
            if code is not None:
                current.set_attribute("http.response.status_code", code)
            if not delivered:
                _log.warning("webhook %s to %s: %s (attempt %d)", name, shown, error, attempt)
            row = (event.event_id, provider_id, name, shown, attempt, status, code, error)
            held = await asyncio.to_thread(self._record, row, shown_event, lease)
        return None if final else held

    async def _attempt(
        self, endpoint: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        # Resolve and check every address now (DNS rebinding), then connect to a checked one.
        pinned = await asyncio.to_thread(self.endpoints.pin, endpoint)
        if isinstance(pinned, str):
            return None, pinned  # refused or unresolvable: no connection was made
        # Asked after pinning, so that a probe let through always ends in success or failure.
        breaker = self.breakers.get(breaker_name(pinned.endpoint.host, pinned.endpoint.port))
        if not breaker.allow():
            if self.metrics is not None:
                self.metrics.webhook_breaker_skips.inc()
            return None, CIRCUIT_OPEN
        started = time.perf_counter()
        try:
            code = await self.send(pinned, body, headers)
        except httpx.HTTPError as failure:
            breaker.failure()
            error = coarse_error(failure)
            self._timed(error, started)
            return None, error
        except asyncio.CancelledError:
            breaker.failure()  # shutting down mid-attempt: never leave a probe in flight
            raise
        if code >= 500 or code == 429:
            breaker.failure()
        else:
            breaker.success()  # the host answers (a 4xx is the receiver's own verdict)
        delivered = 200 <= code < 300
        self._timed("delivered" if delivered else _status_outcome(code), started)
        return code, None if delivered else f"http_status_{code}"

    def _timed(self, outcome: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.on_webhook_attempt(outcome, time.perf_counter() - started)

    # -- deliveries whose process died --------------------------------------------------------

    async def take_over_stale(self) -> int:
        """Takes over deliveries claimed by a process that died (their record has not moved for
        `lease_ms`): each is taken by one process (compare-and-set on its record) and resumed
        at its next attempt. Returns how many this process took."""
        taken = await asyncio.to_thread(self._take_stale, now_ms())
        for t in taken:
            self._spawn(self._attempts(t.provider_id, t.name, t.event, t.target, t.first, t.lease))
        return len(taken)

    def _take_stale(self, now: int) -> list[Taken]:
        taken = (self.take(row) for row in self.stale(now))
        return [t for t in taken if t is not None]

    def stale(self, now: int) -> list[tuple[Any, ...]]:
        """Deliveries claimed but untouched for `lease_ms`, with their outbox events."""
        return self.market.db.read(
            "SELECT d.event_id, d.provider_id, d.event, d.attempts, d.updated_at_ms, o.seq,"
            " o.type, o.subject_id, o.occurred_at_ms, o.payload, o.traceparent"
            " FROM webhook_deliveries d"
            " JOIN outbox o ON o.event_id = d.event_id"
            " WHERE d.status IN ('PENDING', 'RETRYING') AND d.updated_at_ms < ? LIMIT ?",
            (now - self.lease_ms, TAKEN_OVER_PER_SWEEP_MAX),
        )

    def take(self, row: tuple[Any, ...]) -> Taken | None:
        """Takes one stale delivery, unless another process took it since it was read: the
        record must still carry the `updated_at_ms` read (compare-and-set)."""
        event_id, provider_id, name, attempts, seen_ms, *outbox = row
        target = self._target(provider_id)
        if target is None:
            return None

        lease = self._renew(str(event_id), str(provider_id), int(seen_ms))
        if lease is None:
            return None
        seq, type_, subject_id, at_ms, payload, traceparent = outbox
        event = Delivered(seq, event_id, type_, subject_id, at_ms, json.loads(payload), traceparent)
        first = min(int(attempts) + 1, WEBHOOK_ATTEMPTS_MAX)
        return Taken(str(provider_id), str(name), event, target, first, lease)

    def _record(
        self, row: tuple[Any, ...], shown_event: dict[str, object], lease: int
    ) -> int | None:
        """Records an attempt if this process still holds the delivery (compare-and-set on
        `lease`); the new lease, or None when another process took it over (nothing written,
        no dead letter)."""
        event_id, provider_id, name, endpoint, attempts, status, code, error = row

        def write(tx: Any) -> int | None:
            moved = tx.execute(
                "UPDATE webhook_deliveries SET attempts = ?, status = ?, last_status_code = ?,"
                " last_error = ?, updated_at_ms = ? WHERE event_id = ? AND provider_id = ?"
                " AND updated_at_ms = ? AND status IN ('PENDING', 'RETRYING')",
                (attempts, status, code, error, tx.now_ms, event_id, provider_id, lease),
            )
            if moved.rowcount != 1:
                return None
            if status == "FAILED":
                tx.emit(
                    EventType.NOTIFICATION_DEAD_LETTERED,
                    provider_id,
                    {
                        "provider_id": provider_id,
                        "notification": name,
                        "endpoint": endpoint,
                        "attempts": attempts,
                        "last_status_code": code,
                        "last_error": error,
                        # What the provider was sent (its own view), never the outbox event:
                        # this is published on the provider's subject.
                        "event": shown_event,
                    },
                )
            return int(tx.now_ms)

        recorded: int | None = self.market.write(write)
        if recorded is None:
            _log.warning("webhook %s to %s: taken over by another process", name, endpoint)
        return recorded

    def deliveries(
        self, provider_id: str, *, limit: int, starting_after: str | None = None
    ) -> dict[str, object]:
        """The provider's webhook deliveries, newest event first (the outbox order, which a
        retry does not change), a keyset page; a cursor naming none of its deliveries is 422
        naming `starting_after`."""
        with self.market.db.reader() as connection:
            listing = keyset_page(
                connection,
                _DELIVERIES_KEYSET,
                "SELECT d.event_id, d.event, d.endpoint, d.attempts, d.status,"
                " d.last_status_code, d.last_error, d.updated_at_ms"
                " FROM webhook_deliveries d JOIN outbox o ON o.event_id = d.event_id",
                "d.provider_id = ?",
                [provider_id],
                starting_after=starting_after,
                limit=max(1, min(limit, DELIVERIES_LISTED_MAX)),
            )
            rows, more = listed(listing, "unknown_delivery")
        keys = (
            "event_id",
            "event",
            "endpoint",
            "attempts",
            "status",
            "last_status_code",
            "last_error",
            "updated_at_ms",
        )
        return page_answer([dict(zip(keys, row, strict=True)) for row in rows], more, "event_id")


async def _until_done(
    what: str, event: Delivered, call: Callable[..., T], *arguments: Any
) -> tuple[T] | None:
    """`(call(*arguments),)` on a thread, tried up to PRE_RECORD_ATTEMPTS_MAX times; None when
    every attempt failed (logged with the event id: its delivery is lost)."""
    for attempt in range(1, PRE_RECORD_ATTEMPTS_MAX + 1):
        try:
            return (await asyncio.to_thread(call, *arguments),)
        except Exception:
            if attempt == PRE_RECORD_ATTEMPTS_MAX:
                _log.exception("%s given up for event %s", what, event.event_id)
                return None
            log_failure(_log, what)
            await asyncio.sleep(PRE_RECORD_BACKOFF_S * 2 ** (attempt - 1))
    raise AssertionError("unreachable")
