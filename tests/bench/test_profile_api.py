"""bench/profile_api.py's per-layer split of py-spy's collapsed stacks (untimed, no py-spy)."""

from __future__ import annotations

import pytest

from bench.profile_api import HANDLERS, LAYERS, OUTSIDE, layer_table


def _stack(depth: int, leaf: str = "work (x.py:1)") -> str:
    """A stack through the first `depth` layers (outermost first), ending in `leaf`."""
    frames = ["Runner.run (asyncio/runners.py:118)"]
    frames += [frame.replace(")", f":{10 + n})") for n, (_, frame) in enumerate(LAYERS[:depth])]
    return ";".join([*frames, leaf])


def test_each_layer_owns_what_is_on_its_frame_and_not_on_the_next() -> None:
    handler = HANDLERS["balance"].replace(")", ":83)")
    lines = [
        f"{_stack(len(LAYERS), handler)} 30",  # in the handler
        f"{_stack(len(LAYERS))} 20",  # in Litestar, outside the handler
        f"{_stack(1)} 10",  # in the metrics layer's own code
        "Runner.run (asyncio/runners.py:118);select (selectors.py:1) 40",  # between requests
    ]
    rows = {row.name: row for row in layer_table(lines, HANDLERS["balance"], 120.0)}
    assert rows["metrics"].inclusive == pytest.approx(0.60)
    assert rows["metrics"].own == pytest.approx(0.10)
    assert rows["litestar (routing, parsing, response)"].own == pytest.approx(0.20)
    assert rows["handler"].own == pytest.approx(0.30)
    assert rows["idempotency"].own == 0.0
    assert rows[OUTSIDE].own == pytest.approx(0.40)
    # The CPU per request splits over the samples taken in a request: 10 + 20 + 30 of 60.
    assert rows["metrics"].own_us_per_request == pytest.approx(20.0)
    assert rows["handler"].own_us_per_request == pytest.approx(60.0)
    in_request = sum(row.own_us_per_request for row in rows.values())
    assert in_request == pytest.approx(120.0)


def test_no_samples_no_table() -> None:
    assert layer_table(["", "  "], HANDLERS["bids"], 100.0) == []
