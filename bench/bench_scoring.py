"""Scoring throughput: 10 million bids in 100,000 auctions against the memory-bound floor.

The floor is the bare numpy weighted sum of six float64 columns, measured in the same run (the
fastest of the plain expression and an in-place variant, so the ratio is the strict one).
Measured: (a) components + totals + winners (score_bids with_ranks=False) and (b) the same with
full per-auction ranks. Targets: (a) >= 25% of the floor's bids/s, (b) >= 5%. Medians of
REPETITIONS runs each. Other processes share the machine: run it more than once.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from aex.core.reasons import Rejected
from aex.core.scoring import PRESETS, BidBatch, ScoredBids, score_bids

BIDS = int(os.environ.get("AEX_BENCH_BIDS", 10_000_000))
AUCTIONS = int(os.environ.get("AEX_BENCH_AUCTIONS", 100_000))
REPETITIONS = int(os.environ.get("AEX_BENCH_REPETITIONS", 5))
TARGET_WINNERS = 0.25
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


def _interleaved_medians(
    runs: dict[str, Callable[[], object]],
) -> dict[str, tuple[float, float, float]]:
    # One round runs every measure once, so the floor and the scorer see the same machine load
    # (other processes share the cores); per measure: the medians over REPETITIONS rounds of
    # wall seconds, user CPU seconds and system CPU seconds (page faults of fresh arrays).
    samples: dict[str, list[tuple[float, float, float]]] = {label: [] for label in runs}
    for _ in range(REPETITIONS):
        for label, run in runs.items():
            before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            run()
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_SELF)
            user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
            samples[label].append((wall, user, system))
    return {
        label: (
            statistics.median(wall for wall, _, _ in values),
            statistics.median(user for _, user, _ in values),
            statistics.median(system for _, _, system in values),
        )
        for label, values in samples.items()
    }


def _floor_plain(columns: list[np.ndarray], weights: tuple[float, ...]) -> np.ndarray:
    c, w = columns, weights
    return w[0] * c[0] + w[1] * c[1] + w[2] * c[2] + w[3] * c[3] + w[4] * c[4] + w[5] * c[5]


def _floor_in_place(columns: list[np.ndarray], weights: tuple[float, ...]) -> np.ndarray:
    total = np.multiply(columns[0], weights[0])
    term = np.empty_like(total)
    for column, weight in zip(columns[1:], weights[1:], strict=True):
        total += np.multiply(column, weight, out=term)
    return total


def _scored(batch: BidBatch, *, with_ranks: bool) -> ScoredBids:
    scored = score_bids(batch, PRESETS["balanced"], now_ms=NOW_MS, with_ranks=with_ranks)
    assert not isinstance(scored, Rejected), scored
    return scored


def main() -> None:
    rng = np.random.default_rng(20_260_101)
    batch = make_batch(rng, BIDS, AUCTIONS)
    columns = [rng.random(BIDS) for _ in range(6)]
    weights = PRESETS["balanced"].as_tuple()
    medians = _interleaved_medians(
        {
            "floor_plain": lambda: _floor_plain(columns, weights),
            "floor_in_place": lambda: _floor_in_place(columns, weights),
            "winners": lambda: _scored(batch, with_ranks=False),
            "ranks": lambda: _scored(batch, with_ranks=True),
        }
    )
    sanity = _scored(batch, with_ranks=True)
    assert np.array_equal(sanity.is_winner, _scored(batch, with_ranks=False).is_winner)
    floor_wall, floor_user, _ = min(medians["floor_plain"], medians["floor_in_place"])
    rows = [
        ("floor: plain weighted sum", "floor_plain", None),
        ("floor: in-place weighted sum", "floor_in_place", None),
        ("(a) components+totals+winners", "winners", TARGET_WINNERS),
        ("(b) (a) + full ranks", "ranks", TARGET_RANKS),
    ]
    print(f"{BIDS:,} bids in {AUCTIONS:,} auctions; medians of {REPETITIONS} interleaved runs")
    print("ratio = the floor's bids/s share reached (floor = the faster floor variant)")
    print(
        f"{'measure':31} {'wall s':>7} {'Mbids/s':>8} {'ratio':>6} {'target':>6} {'ok':>3}"
        f" | {'user s':>7} {'ratio':>6} {'sys s':>6}"
    )
    for label, key, target in rows:
        wall, user, system = medians[key]
        ratio, user_ratio = floor_wall / wall, floor_user / user
        verdict = "" if target is None else ("yes" if ratio >= target else "NO")
        target_text = "" if target is None else f"{target:.0%}"
        print(
            f"{label:31} {wall:7.3f} {BIDS / wall / 1e6:8.1f} {ratio:6.1%} {target_text:>6}"
            f" {verdict:>3} | {user:7.3f} {user_ratio:6.1%} {system:6.3f}"
        )
    accepted = int(np.count_nonzero(sanity.reject_reason == 0))
    print(f"accepted bids {accepted:,}; auctions with a winner {int(sanity.is_winner.sum()):,}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
