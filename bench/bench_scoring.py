"""Scoring throughput: 10 million bids in 100,000 auctions against the memory-bound floor.

The floor is the bare numpy weighted sum of six float64 columns, measured in the same run (the
fastest of the plain expression and an in-place variant, so the ratio is the strict one).
Measured: (a) components + totals + winners (score_bids with_ranks=False) and (b) the same with
full per-auction ranks, each with the compiled kernel (the default engine) and the numpy path.
Targets: (a) >= 50% of the floor's bids/s, (b) >= 5%. Medians of REPETITIONS (>= 3) interleaved
rounds, wall and CPU time (the CPU ratio is the fairer figure when other processes share the
cores). The kernel's warm-up (numba import, compile or cache load) is timed apart.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from aex.core.reasons import Rejected
from aex.core.scoring import (
    PRESETS,
    BidBatch,
    Engine,
    ScoredBids,
    score_bids,
    warm_scoring_kernels,
)
from bench.harness import Figure, interleaved, rounds_from_env

BIDS = int(os.environ.get("AEX_BENCH_BIDS", 10_000_000))
AUCTIONS = int(os.environ.get("AEX_BENCH_AUCTIONS", 100_000))
REPETITIONS = rounds_from_env(int(os.environ.get("AEX_BENCH_REPETITIONS", 5)))
TARGET_WINNERS = 0.50  # issue 14
TARGET_RANKS = 0.05
NOW_MS = 10**12


def make_batch(rng: np.random.Generator, bids: int, auctions: int) -> BidBatch:
    """A market-like batch: ~bids/auctions bids per auction, a few percent of each reject."""
    sizes = rng.multinomial(bids, np.full(auctions, 1.0 / auctions))
    auction_id = np.repeat(np.arange(auctions, dtype=np.int64) * 7 + 3, sizes)
    budget_min = np.repeat(rng.integers(1_000, 50_000, auctions), sizes)
    budget_max = budget_min + np.repeat(rng.integers(0, 100_000, auctions), sizes)
    opens = np.repeat(rng.integers(0, NOW_MS // 2, auctions), sizes)
    closes = opens + np.repeat(rng.integers(5_000, 300_001, auctions), sizes)
    required = np.repeat(rng.integers(0, 8, auctions) * 3_600_000, sizes)
    hard = np.where(required > 0, required * 3, 0)
    return BidBatch(
        auction_id=auction_id,
        bid_id=rng.permutation(bids).astype(np.int64),
        provider_id=rng.integers(0, 50_000, bids),
        price_minor=rng.integers(budget_min // 2, budget_max + budget_max // 20 + 1),
        currency_matches=rng.random(bids) > 0.01,
        budget_min_minor=budget_min,
        budget_max_minor=budget_max,
        trust=rng.random(bids),
        confidence=rng.random(bids),
        has_sample=rng.random(bids) < 0.3,
        sample_quality=rng.random(bids),
        turnaround_ms=rng.integers(1, 16 * 3_600_000, bids),
        required_turnaround_ms=required,
        hard_limit_turnaround_ms=hard,
        certified_matches=rng.integers(0, 3, bids),
        tier=rng.integers(0, 4, bids).astype(np.int8),
        submitted_at_ms=opens + rng.integers(-1_000, 300_000, bids),
        window_opens_ms=opens,
        window_closes_ms=closes,
        eligible=rng.random(bids) > 0.02,
    )


def _floor_plain(columns: list[np.ndarray], weights: tuple[float, ...]) -> np.ndarray:
    c, w = columns, weights
    return w[0] * c[0] + w[1] * c[1] + w[2] * c[2] + w[3] * c[3] + w[4] * c[4] + w[5] * c[5]


def _floor_in_place(columns: list[np.ndarray], weights: tuple[float, ...]) -> np.ndarray:
    total = np.multiply(columns[0], weights[0])
    term = np.empty_like(total)
    for column, weight in zip(columns[1:], weights[1:], strict=True):
        total += np.multiply(column, weight, out=term)
    return total


def _scored(batch: BidBatch, *, with_ranks: bool, engine: Engine = "compiled") -> ScoredBids:
    weights = PRESETS["balanced"]
    scored = score_bids(batch, weights, now_ms=NOW_MS, with_ranks=with_ranks, engine=engine)
    assert not isinstance(scored, Rejected), scored
    return scored


MEASURES = (
    # (label, key, target): the compiled kernel (the default engine) and the numpy path.
    ("(a) components+totals+winners, compiled", "winners", TARGET_WINNERS),
    ("(b) (a) + full ranks, compiled", "ranks", TARGET_RANKS),
    ("(a) winners, numpy path", "winners_numpy", None),
    ("(b) ranks, numpy path", "ranks_numpy", None),
)


def main(argv: list[str] | None = None) -> list[Figure]:
    rng = np.random.default_rng(20_260_101)
    batch = make_batch(rng, BIDS, AUCTIONS)
    columns = [rng.random(BIDS) for _ in range(6)]
    weights = PRESETS["balanced"].as_tuple()
    compile_started = time.perf_counter()
    warm_scoring_kernels()  # numba import + compile, or a load from its cache
    compile_s = time.perf_counter() - compile_started
    medians = interleaved(
        {
            "floor_plain": lambda: _floor_plain(columns, weights),
            "floor_in_place": lambda: _floor_in_place(columns, weights),
            "winners": lambda: _scored(batch, with_ranks=False),
            "ranks": lambda: _scored(batch, with_ranks=True),
            "winners_numpy": lambda: _scored(batch, with_ranks=False, engine="numpy"),
            "ranks_numpy": lambda: _scored(batch, with_ranks=True, engine="numpy"),
        },
        REPETITIONS,
    )
    sanity = _scored(batch, with_ranks=True)
    reference = _scored(batch, with_ranks=True, engine="numpy")
    for name in ("total", "rank", "is_winner", "reject_reason", "price_score", "sla_score"):
        assert np.array_equal(getattr(sanity, name), getattr(reference, name)), name
    assert np.array_equal(sanity.is_winner, _scored(batch, with_ranks=False).is_winner)
    floors = (medians["floor_plain"], medians["floor_in_place"])
    floor_wall = min(t.wall_s for t in floors)
    floor_cpu = min(t.cpu_s for t in floors)
    floor_user = min(t.cpu_s - t.sys_s for t in floors)
    load_1m, _, _ = os.getloadavg()
    print(f"{BIDS:,} bids in {AUCTIONS:,} auctions; medians of {REPETITIONS} interleaved rounds")
    print(f"kernel warm-up (numba import + compile or cache load): {compile_s:.2f} s")
    print("ratio = the share of the floor's bids/s reached (floor = the faster floor variant,")
    print("separately for wall and CPU time). CPU = time.process_time (user + system) of this")
    print(f"process. Load average {load_1m:.1f} on {os.cpu_count()} cores: when other processes")
    print("share the cores, wall time includes waiting for one, so the CPU ratio is the fairer")
    print("figure under load (the wall ratio is the one on an idle machine). sys = kernel time,")
    print("mostly first-touch page faults (and huge-page compaction) of freshly allocated output")
    print("arrays, which depends on the machine's memory state; user = CPU - sys.")
    print(
        f"{'measure':42} {'wall s':>7} {'Mbids/s':>8} {'ratio':>6} |"
        f" {'CPU s':>6} {'ratio':>6} {'sys s':>6} {'user':>6} | {'target':>6}"
    )
    rows = [("floor: plain weighted sum", "floor_plain", None)]
    rows += [("floor: in-place weighted sum", "floor_in_place", None), *MEASURES]
    for label, key, target in rows:
        timing = medians[key]
        user_ratio = floor_user / (timing.cpu_s - timing.sys_s)
        print(
            f"{label:42} {timing.wall_s:7.3f} {BIDS / timing.wall_s / 1e6:8.1f}"
            f" {floor_wall / timing.wall_s:6.1%} | {timing.cpu_s:6.3f}"
            f" {floor_cpu / timing.cpu_s:6.1%} {timing.sys_s:6.3f} {user_ratio:6.1%} |"
            f" {'' if target is None else f'{target:.0%}':>6}"
        )
    accepted = int(np.count_nonzero(sanity.reject_reason == 0))
    print(f"accepted bids {accepted:,}; auctions with a winner {int(sanity.is_winner.sum()):,}")
    sys.stdout.flush()
    figures = []
    for label, key, target in MEASURES:
        timing = medians[key]
        for clock, seconds, floor_s in (
            ("wall", timing.wall_s, floor_wall),
            ("CPU", timing.cpu_s, floor_cpu),
        ):
            figures.append(
                Figure(
                    "bench_scoring",
                    f"{label} ({clock})",
                    BIDS / seconds / 1e6,
                    "Mbids/s",
                    f"numpy weighted-sum floor ({clock})",
                    BIDS / floor_s / 1e6,
                    REPETITIONS,
                    target,
                )
            )
    return figures


if __name__ == "__main__":
    for figure in main(sys.argv[1:]):
        print(figure.line())
