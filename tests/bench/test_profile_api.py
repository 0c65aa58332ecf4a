"""bench/profile_api.py's split of py-spy's collapsed stacks (untimed, no py-spy)."""

from __future__ import annotations

import pytest

from bench.profile_api import GATEWAY_PARTS, HANDLERS, LAYERS, OTHER, SENDING, layer_table

GATEWAY = LAYERS[0][0]


def _stack(depth: int, leaf: str = "work (x.py:1)") -> str:
    """A stack through the first `depth` layers (outermost first), ending in `leaf`."""
    frames = ["Runner.run (asyncio/runners.py:118)"]
    frames += [frame.replace(")", f":{10 + n})") for n, (_, frame) in enumerate(LAYERS[:depth])]
    return ";".join([*frames, leaf])


def test_each_layer_owns_what_is_on_its_frame_and_not_on_the_next() -> None:
    handler = HANDLERS["balance"].replace(")", ":83)")
    writer = (
        "Thread.run (threading.py:1);SqliteMarketDb._write_batches (serve/stores/market_db.py:9)"
    )
    lines = [
        f"{_stack(len(LAYERS), handler)} 30",  # in the handler
        f"{_stack(len(LAYERS))} 20",  # in Litestar, outside the handler
        f"{_stack(1)} 4",  # in the gateway's own code
        f"{_stack(1, 'Admission.admit (serve/gateway/middleware.py:7)')} 6",  # its rate limit
        f"{writer};Tx.execute (serve/market/usecases.py:5) 25",  # the request's write, elsewhere
        "Thread.run (threading.py:1);misc (y.py:2) 15",  # some other work
        "main (aex/cli.py:1);Runner.run (asyncio/runners.py:118) 400",  # the loop waiting
    ]
    sending = "X.__call__.<locals>.send_x (y.py:3);RequestResponseCycle.send (uvicorn/h.py:9)"
    lines.append(f"{_stack(len(LAYERS))};{sending} 25")  # the answer going out
    rows = {row.name: row for row in layer_table(lines, HANDLERS["balance"], 200.0)}
    # Of the 125 working samples (the waiting loop's are left out):
    assert rows[GATEWAY].inclusive == pytest.approx(60 / 125)
    assert rows[GATEWAY].own == pytest.approx(10 / 125)
    assert rows[GATEWAY_PARTS[0][0]].own == pytest.approx(6 / 125)  # a part of the gateway's
    assert rows["litestar (routing, parsing, response)"].own == pytest.approx(20 / 125)
    assert rows["handler"].own == pytest.approx(30 / 125)
    assert rows["idempotency"].own == 0.0
    assert rows[SENDING].own == pytest.approx(25 / 125)  # not Litestar's, nor a layer's
    assert rows["market writes (writer thread, group commit)"].own == pytest.approx(25 / 125)
    assert rows[OTHER].own == pytest.approx(15 / 125)
    # The CPU per request splits over all of them.
    assert rows[GATEWAY].own_us_per_request == pytest.approx(16.0)
    assert rows["handler"].own_us_per_request == pytest.approx(48.0)
    rows_of_the_sum = [row for row in rows.values() if not row.detail]
    assert sum(row.own_us_per_request for row in rows_of_the_sum) == pytest.approx(200.0)


def test_no_working_samples_no_table() -> None:
    idle = "main (aex/cli.py:1);Runner.run (asyncio/runners.py:118) 40"
    assert layer_table(["", "  ", idle], HANDLERS["bids"], 100.0) == []
