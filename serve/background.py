"""Background tasks of the application's lifespan: the bid-window closer, the outbox tail and,
with AEX_NATS_URL, the outbox relay to NATS JetStream (cursor in the `outbox_relay` table; one
relaying process per database, the leader of serve/stores/market_db.py's `relay_leader`).

The closer polls the store for due windows (on start, overdue ones: a window that ended while
the server was down closes at once) and closes each in its own transaction; the transaction's
OPEN -> EVALUATING guard makes it exactly once even with several workers or a racing closer.
Poll interval: AEX_WINDOW_POLL_MS (serve/settings.py; a window closes at most that late). The
same loop pays out settled contracts whose dispute window has ended (`Market.pay_out_due`,
exactly once under the contract's row lock; docs/ledger.md "Settlement and disputes"), and
moves expired token-bank credit to breakage (`Vouchers.expire_due`, docs/payments.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aex.core.events import Event, EventType, encode_event, event_subject
from serve.breakers import CircuitBreaker, log_failure
from serve.identity.security import now_ms
from serve.market.usecases import Market
from serve.notifications.nats_relay import (
    DUPLICATE_WINDOW_S_DEFAULT,
    STREAM_MAX_AGE_S_DEFAULT,
    JetStreamRelay,
    OutboxRow,
    spec_streams,
)
from serve.notifications.webhooks import Webhooks
from serve.stores.market_db import Lease, MarketDb
from serve.tokenbank.vouchers import Vouchers

_log = logging.getLogger("aex.serve")


async def run_webhook_takeover(webhooks: Webhooks) -> None:
    """Every quarter lease, takes over deliveries whose process died."""
    while True:
        await asyncio.sleep(webhooks.lease_ms / 4000)
        try:
            await webhooks.take_over_stale()
        except Exception:
            log_failure(_log, "webhook take-over")


async def close_due_windows(market: Market) -> int:
    closed = 0
    for work_id in await asyncio.to_thread(market.due_windows, now_ms()):
        if await asyncio.to_thread(market.close_window, work_id) is not None:
            closed += 1
    return closed


async def pay_out_due_contracts(market: Market) -> int:
    """Captures the escrow of settled contracts whose dispute window has ended."""
    paid = 0
    for contract_id in await asyncio.to_thread(market.due_payouts, now_ms()):
        if await asyncio.to_thread(market.pay_out_due, contract_id):
            paid += 1
    return paid


async def run_window_closer(market: Market, poll_ms: int) -> None:
    while True:
        try:
            await close_due_windows(market)
        except Exception:
            log_failure(_log, "window closer")
        try:
            await pay_out_due_contracts(market)
        except Exception:
            log_failure(_log, "payout sweeper")
        try:  # the token bank: expired credit becomes breakage (serve/tokenbank/vouchers.py)
            await asyncio.to_thread(Vouchers(market).expire_due)
        except Exception:
            log_failure(_log, "credit expiry sweeper")
        await asyncio.sleep(poll_ms / 1000)


@asynccontextmanager
async def market_lifespan(app: Any) -> AsyncIterator[None]:
    market: Market = app.state.market
    tasks = [asyncio.create_task(run_window_closer(market, app.state.window_poll_ms))]
    hub = getattr(app.state, "hub", None)
    if hub is not None:
        tasks.append(asyncio.create_task(hub.run()))
    webhooks = getattr(app.state, "webhooks", None)
    if webhooks is not None:
        tasks.append(asyncio.create_task(run_webhook_takeover(webhooks)))
        tasks.append(asyncio.create_task(app.state.webhook_tail.run()))
    nats_url = getattr(app.state, "nats_url", None)
    if nats_url is not None:
        max_age_s, duplicate_window_s = app.state.nats_retention
        relay = run_outbox_relay(
            market.db,
            nats_url,
            app.state.nats_prefix,
            max_age_s=max_age_s,
            duplicate_window_s=duplicate_window_s,
            breaker=app.state.breakers.get("nats"),
        )
        tasks.append(asyncio.create_task(relay))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# ---------------------------------------------------------------------------------------------
# The outbox relay to NATS JetStream (AEX_NATS_URL): load rows after the cursor, publish each
# with Nats-Msg-Id = event id, then persist the cursor. A crash between the acknowledgement and
# the cursor write re-publishes some rows on restart: JetStream drops them as duplicates.
# Connecting and publishing go through the process's `nats` circuit breaker (serve/breakers.py):
# five failures in a row open it, and while it is open the relay does not call NATS at all; the
# events wait in the outbox (durable, in the database), and the probe after 10 s resumes from
# the cursor: the rows not yet acknowledged are published then, once each (Nats-Msg-Id).

RELAY_NAME = "nats"
RELAY_BATCH_MAX = 200
RELAY_POLL_MS = 100
RELAY_BACKOFF_S_MIN = 0.2
RELAY_BACKOFF_S_MAX = 10.0


RELAY_LEADER_RETRY_S = 1.0
RELAY_LEASE_CHECK_S = 1.0


def outbox_rows_after(db: MarketDb, seq: int, prefix: str) -> list[tuple[int, OutboxRow]]:
    found = []
    for row in db.outbox_after(seq, RELAY_BATCH_MAX):
        event = Event(
            row.event_id,
            EventType(row.type),
            row.subject_id,
            row.occurred_at_ms,
            json.loads(row.payload),
        )
        subject = event_subject(event)
        found.append(
            (
                row.seq,
                OutboxRow(
                    row.event_id,
                    f"{prefix}.{subject}" if prefix else subject,
                    encode_event(event),
                    row.traceparent,
                ),
            )
        )
    return found


async def run_outbox_relay(
    db: MarketDb,
    url: str,
    prefix: str,
    *,
    max_age_s: float = STREAM_MAX_AGE_S_DEFAULT,
    duplicate_window_s: float = DUPLICATE_WINDOW_S_DEFAULT,
    breaker: CircuitBreaker | None = None,
) -> None:
    """Relays in the one process that leads (db.relay_leader); the others wait their turn."""
    breaker = breaker or CircuitBreaker("nats")
    while True:
        # Asking for the lead reads the database (PostgreSQL: an advisory lock; SQLite: a lock
        # file): a failure there is retried, never the end of the relay (events would then
        # wait in the outbox until a restart).
        try:
            await _lead_and_relay(db, url, prefix, max_age_s, duplicate_window_s, breaker)
        except Exception:
            log_failure(_log, "outbox relay leadership")
        await asyncio.sleep(RELAY_LEADER_RETRY_S)


async def _lead_and_relay(
    db: MarketDb,
    url: str,
    prefix: str,
    max_age_s: float,
    duplicate_window_s: float,
    breaker: CircuitBreaker,
) -> None:
    leadership = db.relay_leader(RELAY_NAME)
    lease = await asyncio.to_thread(leadership.__enter__)
    try:
        if lease is not None:
            relay = JetStreamRelay(
                url,
                streams=spec_streams(prefix),
                max_age_s=max_age_s,
                duplicate_window_s=duplicate_window_s,
            )
            await _relay(db, relay, prefix, lease, breaker)
            _log.warning("outbox relay: the leader's lease lapsed; trying to lead again")
    finally:
        await asyncio.shield(asyncio.to_thread(leadership.__exit__, None, None, None))


async def _relay(
    db: MarketDb, configured: JetStreamRelay, prefix: str, lease: Lease, breaker: CircuitBreaker
) -> None:
    """Relays until cancelled, or until the lease lapses (checked every RELAY_LEASE_CHECK_S)."""
    backoff_s = RELAY_BACKOFF_S_MIN
    relay: JetStreamRelay | None = None
    checked_at = time.monotonic()
    while True:
        if time.monotonic() - checked_at >= RELAY_LEASE_CHECK_S:
            checked_at = time.monotonic()
            if not await asyncio.to_thread(lease.held):
                if relay is not None:
                    await _close_quietly(relay)
                return
        if not breaker.allow():  # NATS is down: the rows wait in the outbox
            await asyncio.sleep(min(breaker.retry_after_s(), RELAY_LEASE_CHECK_S))
            continue
        try:
            relay, relayed = await _relay_step(db, relay, configured, prefix, breaker)
            backoff_s = RELAY_BACKOFF_S_MIN
            if relayed < RELAY_BATCH_MAX:
                await asyncio.sleep(RELAY_POLL_MS / 1000)
        except asyncio.CancelledError:
            if relay is not None:
                await asyncio.shield(_close_quietly(relay))
            raise
        except Exception:
            _log.exception("outbox relay to NATS (retrying in %.1f s)", backoff_s)
            if relay is not None:
                await _close_quietly(relay)
                relay = None
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, RELAY_BACKOFF_S_MAX)


async def _relay_step(
    db: MarketDb,
    relay: JetStreamRelay | None,
    configured: JetStreamRelay,
    prefix: str,
    breaker: CircuitBreaker,
) -> tuple[JetStreamRelay, int]:
    """One round: connect when needed, publish the rows after the cursor, move the cursor.
    Connecting and publishing failures count on the `nats` breaker; returns the rows relayed."""
    connected = relay
    try:
        if connected is None:
            connected = await configured.connect()
            await connected.ensure_streams()
    except Exception:
        breaker.failure()
        raise
    if relay is None:
        breaker.success()  # NATS answered: a probe ends here even if the database fails next
    try:
        cursor = await asyncio.to_thread(db.relay_cursor, RELAY_NAME)
        batch = await asyncio.to_thread(outbox_rows_after, db, cursor, prefix)
        if batch:
            try:
                await connected.publish([row for _, row in batch])
            except Exception:
                breaker.failure()
                raise
            await asyncio.to_thread(db.save_relay_cursor, RELAY_NAME, batch[-1][0])
    except Exception:
        if relay is None:  # connected in this round: the caller does not hold it yet
            await _close_quietly(connected)
        raise
    breaker.success()
    return connected, len(batch)


async def _close_quietly(relay: JetStreamRelay) -> None:
    try:
        await asyncio.wait_for(relay.close(), 2)
    except Exception:
        _log.debug("closing the NATS connection", exc_info=True)
