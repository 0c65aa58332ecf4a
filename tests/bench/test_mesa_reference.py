"""bench/mesa_reference.py, the Mesa baseline of bench_sim (untimed): the same market's
outcomes at a tiny size, reproducible from its seed."""

from __future__ import annotations

from bench.mesa_reference import WORK_PER_TICK, run


def test_the_mesa_model_clears_the_reference_market_reproducibly() -> None:
    first, second = run(3), run(3)
    assert first["auctions"] == second["auctions"]
    assert first["success_rate"] == second["success_rate"]
    # About 50 bidders per item, most under the budget: every item finds a winner.
    assert first["auctions"] == 3 * WORK_PER_TICK
    # Winners are chosen for reputation and confidence too: better than the mean quality (2/3).
    assert 0.70 < first["success_rate"] < 0.95
