"""Webhook notifications: the SSE stream's events, POSTed to a provider's `endpoint`.

Each delivery is `POST <endpoint>` with the event as JSON and three headers:
- `X-AEX-Event-Id`: the outbox event id (deduplicate on it: a delivery may repeat);
- `X-AEX-Timestamp`: Unix seconds when this attempt was signed;
- `X-AEX-Signature`: `sha256=` + hex HMAC-SHA256 over `<timestamp>.<body>`, keyed with the
  provider's signing key = the SHA-256 hex digest of its api secret (`aex_sk_live_...`; the
  exchange stores only that digest, the provider computes it from the secret it was shown).
A receiver refuses a timestamp more than WEBHOOK_REPLAY_WINDOW_S (5 minutes) from its clock,
and a signature that does not match (`verify_webhook` below is the reference check).

A 2xx answer delivers; anything else (or no answer within WEBHOOK_TIMEOUT_S) is retried after
backoff_ms × 2^(attempt−1), at most WEBHOOK_ATTEMPTS_MAX attempts. Every attempt's outcome is
recorded in `webhook_deliveries` and the provider reads them at
`GET /v1/notifications/deliveries`.

Several processes: every process tails the shared outbox (serve/events.py), so each sees every
event; the first to insert the (event, provider) row of `webhook_deliveries` (status PENDING,
`ON CONFLICT DO NOTHING`) delivers it, and the others leave it. A delivery that failed every
attempt is dead-lettered: in the transaction that records it FAILED, a
`notification.dead_lettered` event goes to the outbox, which the NATS relay publishes on
"aex.notification.dead_lettered.<provider_id>" (the NOTIFICATIONS stream) with the original
event in its payload, for an operator to inspect and replay.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx

from aex.core.events import EventType
from serve.events import Delivered, notification_for
from serve.market import Market

WEBHOOK_REPLAY_WINDOW_S = 300
WEBHOOK_TIMEOUT_S = 5.0
WEBHOOK_ATTEMPTS_MAX = 5
WEBHOOK_BACKOFF_MS_DEFAULT = 1_000
DELIVERIES_LISTED_MAX = 200
_log = logging.getLogger("aex.serve")


def signature(signing_key: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(signing_key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_webhook(api_secret: str, headers: dict[str, str], body: bytes, *, now_s: int) -> bool:
    """The receiver's check: a fresh timestamp and a matching signature."""
    signing_key = hashlib.sha256(api_secret.encode("ascii")).hexdigest()
    try:
        timestamp = int(headers["x-aex-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs(now_s - timestamp) > WEBHOOK_REPLAY_WINDOW_S:
        return False
    expected = signature(signing_key, timestamp, body)
    return hmac.compare_digest(expected, headers.get("x-aex-signature", ""))


class Webhooks:
    def __init__(self, market: Market, *, backoff_ms: int = WEBHOOK_BACKOFF_MS_DEFAULT) -> None:
        assert backoff_ms > 0
        self.market = market
        self.backoff_ms = backoff_ms
        self._tasks: set[asyncio.Task[None]] = set()

    def on_event(self, event: Delivered) -> None:
        """A hub listener (runs on the event loop): schedules one delivery per recipient."""
        payload = event.payload
        candidates = set(payload.get("recipients", ())) | set(payload.get("losers", ()))
        if isinstance(payload.get("provider_id"), str):
            candidates.add(payload["provider_id"])
        for provider_id in sorted(candidates):
            name = notification_for(provider_id, event)
            if name is not None:
                task = asyncio.get_running_loop().create_task(
                    self._deliver(provider_id, name, event)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _claim(self, provider_id: str, name: str, event_id: str) -> tuple[str, str] | None:
        """The endpoint and signing key, when this process is the one to deliver."""
        rows = self.market.db.read(
            "SELECT endpoint, secret_digest FROM providers WHERE provider_id = ?", (provider_id,)
        )
        if not rows or not rows[0][0]:
            return None
        endpoint, signing_key = str(rows[0][0]), str(rows[0][1])

        def write(tx: Any) -> bool:
            claimed = tx.execute(
                "INSERT INTO webhook_deliveries VALUES (?, ?, ?, ?, 0, 'PENDING', NULL, NULL, ?)"
                " ON CONFLICT (event_id, provider_id) DO NOTHING",
                (event_id, provider_id, name, endpoint, tx.now_ms),
            )
            return bool(claimed.rowcount == 1)

        return (endpoint, signing_key) if self.market.write(write) else None

    async def _deliver(self, provider_id: str, name: str, event: Delivered) -> None:
        target = await asyncio.to_thread(self._claim, provider_id, name, event.event_id)
        if target is None:
            return  # no endpoint, or another process delivers it
        endpoint, signing_key = target
        body = json.dumps({"event": name, **event.to_json()}, separators=(",", ":")).encode()
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S) as http:
            for attempt in range(1, WEBHOOK_ATTEMPTS_MAX + 1):
                timestamp = int(time.time())
                headers = {
                    "content-type": "application/json",
                    "x-aex-event": name,
                    "x-aex-event-id": event.event_id,
                    "x-aex-timestamp": str(timestamp),
                    "x-aex-signature": signature(signing_key, timestamp, body),
                }
                code, error = None, None
                try:
                    response = await http.post(endpoint, content=body, headers=headers)
                    code = response.status_code
                except httpx.HTTPError as failure:
                    error = type(failure).__name__
                delivered = code is not None and 200 <= code < 300
                final = delivered or attempt == WEBHOOK_ATTEMPTS_MAX
                status = "DELIVERED" if delivered else ("FAILED" if final else "RETRYING")
                row = (event.event_id, provider_id, name, endpoint, attempt, status, code, error)
                await asyncio.to_thread(self._record, row, event)
                if final:
                    return
                await asyncio.sleep(self.backoff_ms * 2 ** (attempt - 1) / 1000)

    def _record(self, row: tuple[Any, ...], event: Delivered) -> None:
        event_id, provider_id, name, endpoint, attempts, status, code, error = row

        def write(tx: Any) -> None:
            tx.execute(
                "UPDATE webhook_deliveries SET attempts = ?, status = ?, last_status_code = ?,"
                " last_error = ?, updated_at_ms = ? WHERE event_id = ? AND provider_id = ?",
                (attempts, status, code, error, tx.now_ms, event_id, provider_id),
            )
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
                        "event": event.to_json(),
                    },
                )

        self.market.write(write)

    def deliveries(self, provider_id: str, limit: int) -> list[dict[str, object]]:
        rows = self.market.db.read(
            "SELECT event_id, event, endpoint, attempts, status, last_status_code, last_error,"
            " updated_at_ms FROM webhook_deliveries WHERE provider_id = ?"
            " ORDER BY updated_at_ms DESC LIMIT ?",
            (provider_id, min(limit, DELIVERIES_LISTED_MAX)),
        )
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
        return [dict(zip(keys, row, strict=True)) for row in rows]
