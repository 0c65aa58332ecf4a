"""Backtesting: re-score recorded auctions under other weights and compare the outcomes.

Input: a market log with every bid recorded (`log.bids = "all"` in the simulator, or the live
exchange's `aex export`). Each auction's logged components go through the core's
`rank_auctions` again with the new weights. This is a static counterfactual: bids, trust scores
and the population are as recorded; how reputation would have evolved under the new awards is
not replayed (run the simulator with the new weights for that).

Expected success of an award uses the provider's true quality when the log comes from the
simulator (providers.quality), else the provider's observed success rate in the log.

Prices: "before" is what each award recorded (awards.price_minor, the contract price under
the run's own payment rule); "after" is the contract price under `payment_rule` (the core's
`contract_prices`: the winner's bid under first score, the price at which its score meets the
runner-up's under second score), so a rules file's payment rule is backtested too.

Auctions are re-ranked in chunks of whole auctions (about `RESCORE_CHUNK_BIDS` bids each; the
auctions are independent, so the chunks change nothing); `progress(n)` hears of every chunk's
bids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import polars as pl

from aex.sim import _core

__all__ = [
    "RESCORE_CHUNK_BIDS",
    "BacktestResult",
    "backtest",
    "check_backtestable",
    "recorded_bids",
]

RESCORE_CHUNK_BIDS = 100_000

_BIDS_SQL = """
SELECT b.work_id, b.bid_id, b.provider_id, b.price_minor, b.submitted_at_ms,
       b.price_score, b.trust_score, b.confidence_score, b.sample_score, b.sla_score,
       b.certification_score, b.reject_reason, b.is_winner, w.budget_min_minor,
       w.budget_max_minor, a.awarded_price_minor,
       coalesce(p.quality, r.rate, 0.0) AS success_probability
FROM bids b
JOIN work w USING (run_id, work_id)
LEFT JOIN (SELECT run_id AS award_run, work_id AS award_work, price_minor AS awarded_price_minor
           FROM awards WHERE run_id = $run) a ON a.award_work = b.work_id AND b.is_winner
LEFT JOIN providers p USING (run_id, provider_id)
LEFT JOIN (SELECT provider_id, avg(success::DOUBLE) AS rate FROM outcomes
           WHERE run_id = $run GROUP BY provider_id) r USING (provider_id)
WHERE b.run_id = $run
ORDER BY b.work_id, b.bid_id
"""


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """Per-auction comparison (polars) and its summary."""

    auctions: pl.DataFrame
    summary: dict[str, Any]


def check_backtestable(con: duckdb.DuckDBPyConnection, run_id: int) -> None:
    """Raises ValueError unless run `run_id` is in the log with every bid logged."""
    levels = con.execute("SELECT log_bids FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if not levels:
        raise ValueError(f"run {run_id} is not in this market log")
    if levels[0][0] not in ("all", None):
        raise ValueError(f"run {run_id} logged bids={levels[0][0]!r}; backtests need 'all'")


def recorded_bids(con: duckdb.DuckDBPyConnection, run_id: int) -> int:
    """How many bids run `run_id` logged (a backtest's progress total)."""
    found = con.execute("SELECT count(*) FROM bids WHERE run_id = ?", [run_id]).fetchall()
    return int(found[0][0])


def backtest(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    weights: _core.Weights,
    *,
    payment_rule: _core.PaymentRule = _core.PaymentRule.FIRST_SCORE,
    progress: Callable[[int], object] | None = None,
) -> BacktestResult:
    """Re-scores run `run_id` under `weights` and prices its winners under `payment_rule`;
    see the module docstring."""
    check_backtestable(con, run_id)
    cursor = con.execute(_BIDS_SQL, {"run": run_id})
    names = [d[0] for d in cursor.description]
    bids = pl.DataFrame(cursor.fetchall(), schema=names, orient="row")
    if bids.height == 0:
        raise ValueError(f"run {run_id} has no recorded bids")

    def col(name: str, dtype: type) -> Any:
        return bids[name].to_numpy().astype(dtype)

    work_id = col("work_id", np.int64)  # sorted (_BIDS_SQL): an auction's bids are adjacent
    winners = np.zeros(bids.height, np.bool_)
    paid = np.zeros(bids.height, np.int64)  # the contract price, at each new winner's row
    start = 0
    while start < bids.height:
        stop = min(start + RESCORE_CHUNK_BIDS, bids.height)
        stop = int(np.searchsorted(work_id, work_id[stop - 1], side="right"))  # whole auctions
        part = bids.slice(start, stop - start)

        def chunk(name: str, dtype: type, part: pl.DataFrame = part) -> Any:
            return part[name].to_numpy().astype(dtype)

        components = _core.Components(
            price_score=chunk("price_score", np.float64),
            trust_score=chunk("trust_score", np.float64),
            confidence_score=chunk("confidence_score", np.float64),
            sample_score=chunk("sample_score", np.float64),
            sla_score=chunk("sla_score", np.float64),
            certification_score=chunk("certification_score", np.float64),
            reject_reason=chunk("reject_reason", np.uint8),
        )
        scored = _core.rank_auctions(
            work_id[start:stop],
            components,
            weights,
            price_minor=chunk("price_minor", np.int64),
            submitted_at_ms=chunk("submitted_at_ms", np.int64),
            bid_id=chunk("bid_id", np.int64),
            with_ranks=False,
        )
        winners[start:stop] = np.asarray(scored.is_winner)
        paid[start + np.flatnonzero(scored.is_winner)] = _core.contract_prices(
            work_id[start:stop],
            scored,
            weights,
            payment_rule,
            price_minor=chunk("price_minor", np.int64),
            budget_min_minor=chunk("budget_min_minor", np.int64),
            budget_max_minor=chunk("budget_max_minor", np.int64),
        )
        if progress is not None:
            progress(stop - start)
        start = stop
    bids = bids.with_columns(pl.Series("new_winner", winners), pl.Series("paid_minor", paid))
    before = bids.filter(pl.col("is_winner")).select(
        "work_id",
        "budget_max_minor",
        pl.col("provider_id").alias("provider_before"),
        # the recorded award's price (its bid when the log has no award row for it)
        pl.coalesce("awarded_price_minor", "price_minor").alias("price_before"),
        pl.col("success_probability").alias("success_before"),
    )
    after = bids.filter(pl.col("new_winner")).select(
        "work_id",
        pl.col("provider_id").alias("provider_after"),
        pl.col("paid_minor").alias("price_after"),
        pl.col("success_probability").alias("success_after"),
    )
    auctions = before.join(after, on="work_id", how="full", coalesce=True).with_columns(
        changed=pl.col("provider_before") != pl.col("provider_after"),
        # expected consumer surplus: success × (budget − price)
        surplus_before=pl.col("success_before")
        * (pl.col("budget_max_minor") - pl.col("price_before")),
        surplus_after=pl.col("success_after")
        * (pl.col("budget_max_minor") - pl.col("price_after")),
    )
    summary = auctions.select(
        auctions=pl.len(),
        awards_changed_share=pl.col("changed").mean(),
        price_mean_before_minor=pl.col("price_before").mean(),
        price_mean_after_minor=pl.col("price_after").mean(),
        expected_success_before=pl.col("success_before").mean(),
        expected_success_after=pl.col("success_after").mean(),
        expected_surplus_before_minor=pl.col("surplus_before").sum(),
        expected_surplus_after_minor=pl.col("surplus_after").sum(),
    ).row(0, named=True)
    return BacktestResult(auctions=auctions, summary=summary)
