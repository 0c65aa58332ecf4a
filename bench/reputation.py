"""Reputation throughput: every provider's reputation from 10 million outcomes in one call.

The floor, measured in the same run, is one bare `np.bincount` of a float64 weight column into
the providers: the grouping every reputation component needs at least once. The columnar call
does a handful of such passes plus exp2/log2 per outcome, so a ratio of 10-25% is expected.
Also times `reputation_of`, the server's one-provider call, on a 200-outcome record.
"""

from __future__ import annotations

import sys

import numpy as np

from aex.core.reputation import DAY_MS, Outcomes, reputation_of, reputation_scores
from bench.harness import Figure, interleaved, rounds_from_env

OUTCOMES = 10_000_000
PROVIDERS = 100_000
REPEATS = rounds_from_env(5)
ONE_CALLS = 200  # reputation_of calls per round


def main(argv: list[str] | None = None) -> list[Figure]:
    rng = np.random.default_rng(20_261_127)
    now_ms = 400 * DAY_MS
    outcomes = Outcomes(
        provider_index=rng.integers(0, PROVIDERS, OUTCOMES),
        at_ms=rng.integers(0, now_ms, OUTCOMES),
        kind=rng.integers(0, 5, OUTCOMES).astype(np.uint8),
        value_minor=rng.integers(100, 100_000, OUTCOMES),
    )
    certificates = rng.integers(0, 3, PROVIDERS)
    weights = rng.random(OUTCOMES)

    medians = interleaved(
        {
            "floor": lambda: np.bincount(
                outcomes.provider_index, weights=weights, minlength=PROVIDERS
            ),
            "columnar": lambda: reputation_scores(
                outcomes, n_providers=PROVIDERS, active_certificates=certificates, now_ms=now_ms
            ),
        },
        REPEATS,
    )
    floor_s, columnar_s = medians["floor"].wall_s, medians["columnar"].wall_s
    floor_rate, columnar_rate = OUTCOMES / floor_s, OUTCOMES / columnar_s
    print(f"floor (one bincount)      {floor_rate / 1e6:8.1f} M outcomes/s  ({floor_s:.3f} s)")
    print(
        f"reputation_scores         {columnar_rate / 1e6:8.1f} M outcomes/s  ({columnar_s:.3f} s)"
    )
    print(f"ratio to floor            {columnar_rate / floor_rate:8.1%}")

    record = Outcomes(
        provider_index=np.zeros(200, dtype=np.int64),
        at_ms=np.arange(200, dtype=np.int64) * (DAY_MS // 2),
        kind=rng.integers(0, 5, 200).astype(np.uint8),
        value_minor=np.full(200, 10_000, dtype=np.int64),
    )
    record_weights = rng.random(200)

    def one_floor() -> None:
        for _ in range(ONE_CALLS):
            np.bincount(record.provider_index, weights=record_weights, minlength=1)

    def one() -> None:
        for _ in range(ONE_CALLS):
            reputation_of(record, active_certificates=1, now_ms=now_ms)

    small = interleaved({"floor": one_floor, "one": one}, REPEATS)
    one_s = small["one"].wall_s / ONE_CALLS
    print(f"reputation_of (200 outc.) {one_s * 1e6:8.0f} µs median")
    return [
        Figure(
            "reputation",
            "reputation_scores, 10M outcomes",
            columnar_rate / 1e6,
            "M outcomes/s",
            "one np.bincount",
            floor_rate / 1e6,
            REPEATS,
        ),
        Figure(
            "reputation",
            "reputation_of, 200 outcomes",
            1 / one_s,
            "calls/s",
            "one np.bincount of 200",
            ONE_CALLS / small["floor"].wall_s,
            REPEATS,
        ),
    ]


if __name__ == "__main__":
    for figure in main(sys.argv[1:]):
        print(figure.line())
