"""The bidder draw: a Bernoulli process per work item, grouped by work, exact after top-ups."""

from __future__ import annotations

import numpy as np

from aex.sim.engine import _draw_bidders


def test_bidders_are_distinct_sorted_and_inside_their_slice() -> None:
    rng = np.random.default_rng(5)
    sizes = np.array([1000, 3, 250, 1000, 1] * 200, dtype=np.int64)
    work, position = _draw_bidders(rng, sizes, 0.05)
    assert np.all(np.diff(work) >= 0)
    same_work = work[1:] == work[:-1]
    assert np.all(np.diff(position)[same_work] > 0)
    assert np.all((position >= 0) & (position < sizes[work]))


def test_bidder_counts_follow_the_binomial_law() -> None:
    rng = np.random.default_rng(6)
    sizes = np.full(20_000, 1000, dtype=np.int64)
    work, _ = _draw_bidders(rng, sizes, 0.05)
    counts = np.bincount(work, minlength=sizes.size)
    # Binomial(1000, 0.05): mean 50, variance 47.5; 6 standard errors of slack
    assert abs(counts.mean() - 50.0) < 6 * np.sqrt(47.5 / sizes.size)
    assert abs(counts.var() - 47.5) < 0.1 * 47.5


def test_every_provider_bids_when_the_probability_is_one() -> None:
    rng = np.random.default_rng(7)
    work, position = _draw_bidders(rng, np.array([4, 2], dtype=np.int64), 1.0)
    assert work.tolist() == [0, 0, 0, 0, 1, 1]
    assert position.tolist() == [0, 1, 2, 3, 0, 1]
