"""The gateway's request timeout (serve/gateway/pipeline.py `Deadlines`): one sweep for every
request in flight, cutting a request at most one tick after its deadline."""

from __future__ import annotations

import asyncio
import time

import pytest

from serve.gateway.pipeline import Deadlines


async def _request(deadlines: Deadlines, work_s: float) -> str:
    try:
        await deadlines.run(asyncio.sleep(work_s))
    except TimeoutError:
        return "timed out"
    return "answered"


def test_a_request_past_its_deadline_is_cut_within_a_tick_and_the_others_are_not() -> None:
    async def main() -> tuple[list[str], float]:
        deadlines = Deadlines(0.4)
        assert deadlines.tick_s == pytest.approx(0.05)
        started = time.monotonic()
        slow = asyncio.create_task(_request(deadlines, 30))
        quick = [asyncio.create_task(_request(deadlines, 0.1)) for _ in range(3)]
        outcomes = await asyncio.gather(slow, *quick)
        elapsed_s = time.monotonic() - started
        assert deadlines._due == {}
        assert deadlines._expired == set()
        return outcomes, elapsed_s

    outcomes, elapsed_s = asyncio.run(main())
    assert outcomes == ["timed out", "answered", "answered", "answered"]
    assert 0.4 <= elapsed_s < 0.4 + 0.05 + 0.25  # one tick late at most, and some slack


def test_a_cancellation_of_another_origin_stays_a_cancellation() -> None:
    async def main() -> None:
        deadlines = Deadlines(30)
        task = asyncio.create_task(_request(deadlines, 30))
        await asyncio.sleep(0.05)
        task.cancel()  # the server stopping, the client gone: not the timeout's
        with pytest.raises(asyncio.CancelledError):
            await task
        assert deadlines._due == {}

    asyncio.run(main())


def test_the_sweep_stops_when_no_request_is_in_flight_and_starts_again() -> None:
    async def main() -> None:
        deadlines = Deadlines(1)
        assert await _request(deadlines, 0) == "answered"
        await asyncio.sleep(deadlines.tick_s * 2)
        assert deadlines._sweep_loop is None  # an idle server does not wake for it
        assert await asyncio.create_task(_request(deadlines, 5)) == "timed out"

    asyncio.run(main())


def test_the_tick_is_a_twentieth_of_the_timeout_within_50_ms_and_1_s() -> None:
    assert Deadlines(30).tick_s == 1.0
    assert Deadlines(10).tick_s == 0.5
    assert Deadlines(0.5).tick_s == 0.05
