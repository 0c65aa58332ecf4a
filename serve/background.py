"""Background tasks of the application's lifespan: the bid-window closer and the outbox tail.

The closer polls the store for due windows (on start, overdue ones: a window that ended while
the server was down closes at once) and closes each in its own transaction; the transaction's
OPEN -> EVALUATING guard makes it exactly once even with several workers or a racing closer.
Poll interval: AEX_WINDOW_POLL_MS (default 200 ms; a window closes at most that late).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from serve.market import Market
from serve.security import now_ms
from serve.webhooks import WEBHOOK_BACKOFF_MS_DEFAULT

WINDOW_POLL_MS_DEFAULT = 200
_log = logging.getLogger("aex.serve")


def webhook_backoff_ms() -> int:
    """AEX_WEBHOOK_BACKOFF_MS: the first retry's delay (doubling after), default 1000."""
    value = int(os.environ.get("AEX_WEBHOOK_BACKOFF_MS", WEBHOOK_BACKOFF_MS_DEFAULT))
    assert 1 <= value <= 600_000, "AEX_WEBHOOK_BACKOFF_MS in [1, 600000]"
    return value


def window_poll_ms() -> int:
    value = int(os.environ.get("AEX_WINDOW_POLL_MS", WINDOW_POLL_MS_DEFAULT))
    assert 1 <= value <= 60_000, "AEX_WINDOW_POLL_MS in [1, 60000]"
    return value


async def close_due_windows(market: Market) -> int:
    closed = 0
    for work_id in await asyncio.to_thread(market.due_windows, now_ms()):
        if await asyncio.to_thread(market.close_window, work_id) is not None:
            closed += 1
    return closed


async def run_window_closer(market: Market, poll_ms: int) -> None:
    while True:
        try:
            await close_due_windows(market)
        except Exception:
            _log.exception("window closer")
        await asyncio.sleep(poll_ms / 1000)


@asynccontextmanager
async def market_lifespan(app: Any) -> AsyncIterator[None]:
    market: Market = app.state.market
    tasks = [asyncio.create_task(run_window_closer(market, window_poll_ms()))]
    hub = getattr(app.state, "hub", None)
    if hub is not None:
        tasks.append(asyncio.create_task(hub.run()))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
