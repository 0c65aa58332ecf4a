"""Summary metrics of a run, computed in DuckDB SQL over the market log.

- fill_rate = awards / work items posted
- success_rate = successful outcomes / awards
- consumer_surplus_minor = Σ over successful work of (budget_max − price): the consumer values
  finished work at its stated budget and pays nothing for failed work
- fee_revenue_minor, gmv_minor from settlements; fee_per_work = fee revenue / work posted
- price levels: mean awarded price and mean price / budget
- hhi: Herfindahl–Hirschman index of award shares by provider identity, 0..10,000
- provider profit by strategy = Σ payouts − Σ costs of attempts (simulator runs only)
- attacker_profit_minor: the profit of the attacker strategies (strategies.ATTACKER_STRATEGIES)
- honest_win_share: the share of awards won by 'honest' providers
- honest_profit_per_provider_minor: the mean realised profit (payouts − costs) of an honest
  provider (one per slot, the providers that never won count as 0), with its 95% Student-t
  interval over the honest providers (honest_profit_ci_low_minor, _high_minor) and
  honest_break_even: whether the interval's upper bound is >= 0 (honest providers do not
  lose money on average: the economics check of every run; `aex sim --replications N`
  reports the same mean with its interval over seeds)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import polars as pl

from aex.sim.strategies import ATTACKER_STRATEGIES

__all__ = [
    "check_invariants",
    "honest_profits",
    "mean_interval",
    "profit_by_strategy",
    "run_summary",
    "store_welfare",
    "summary_frame",
]

_SUMMARY_SQL = """
WITH w AS (SELECT count(*) AS n FROM work WHERE run_id = $run),
a AS (SELECT count(*) AS n, avg(price_minor) AS price_mean FROM awards WHERE run_id = $run),
o AS (SELECT count(*) FILTER (WHERE success) AS ok FROM outcomes WHERE run_id = $run),
s AS (SELECT coalesce(sum(fee_minor), 0) AS fee, coalesce(sum(price_minor), 0) AS gmv,
             coalesce(sum(w.budget_max_minor - s.price_minor), 0) AS surplus
      FROM settlements s JOIN work w USING (run_id, work_id) WHERE s.run_id = $run),
pb AS (SELECT avg(a.price_minor / w.budget_max_minor) AS ratio
       FROM awards a JOIN work w USING (run_id, work_id) WHERE a.run_id = $run),
shares AS (SELECT count(*) / (SELECT n FROM a) AS share FROM awards WHERE run_id = $run
           GROUP BY provider_id),
honest AS (SELECT count(*) AS n FROM awards a JOIN providers p USING (run_id, provider_id)
           WHERE a.run_id = $run AND p.strategy = 'honest')
SELECT w.n AS work_items, a.n AS awards, o.ok AS successes,
       a.n / nullif(w.n, 0) AS fill_rate, o.ok / nullif(a.n, 0) AS success_rate,
       s.surplus AS consumer_surplus_minor, s.fee AS fee_revenue_minor, s.gmv AS gmv_minor,
       s.fee / nullif(w.n, 0) AS fee_per_work_minor, a.price_mean AS price_mean_minor,
       pb.ratio AS price_to_budget_mean,
       (SELECT coalesce(sum(share * share) * 10000, 0) FROM shares) AS hhi,
       honest.n / nullif(a.n, 0) AS honest_win_share
FROM w, a, o, s, pb, honest
"""

_PROFIT_SQL = """
WITH pay AS (SELECT provider_id, sum(payout_minor) AS payout FROM settlements
             WHERE run_id = $run GROUP BY provider_id),
cost AS (SELECT provider_id, sum(cost_minor) AS cost, count(*) AS jobs FROM outcomes
         WHERE run_id = $run GROUP BY provider_id)
SELECT p.strategy, count(DISTINCT p.slot) AS providers, coalesce(sum(cost.jobs), 0) AS jobs,
       coalesce(sum(pay.payout), 0) AS payout_minor, coalesce(sum(cost.cost), 0) AS cost_minor,
       coalesce(sum(pay.payout), 0) - coalesce(sum(cost.cost), 0) AS profit_minor
FROM providers p LEFT JOIN pay USING (provider_id) LEFT JOIN cost USING (provider_id)
WHERE p.run_id = $run GROUP BY p.strategy ORDER BY p.strategy
"""


_HONEST_SQL = """
WITH pay AS (SELECT provider_id, sum(payout_minor) AS payout FROM settlements
             WHERE run_id = $run GROUP BY provider_id),
cost AS (SELECT provider_id, sum(cost_minor) AS cost FROM outcomes
         WHERE run_id = $run GROUP BY provider_id)
SELECT p.slot, coalesce(sum(pay.payout), 0) - coalesce(sum(cost.cost), 0) AS profit_minor
FROM providers p LEFT JOIN pay USING (provider_id) LEFT JOIN cost USING (provider_id)
WHERE p.run_id = $run AND p.strategy = 'honest' GROUP BY p.slot ORDER BY p.slot
"""


def honest_profits(con: duckdb.DuckDBPyConnection, run_id: int) -> list[float]:
    """The realised profit of every honest provider slot of a run (minor units)."""
    return [float(r[1]) for r in con.execute(_HONEST_SQL, {"run": run_id}).fetchall()]


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean with its Student-t interval (a point with fewer than 2)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(data.mean())
    if data.size < 2:
        return (mean, mean, mean)
    from scipy import stats  # here, not at import: scipy.stats costs every `aex` command ~1 s

    t = float(stats.t.ppf(0.5 + confidence / 2, data.size - 1))
    half = t * float(data.std(ddof=1)) / math.sqrt(data.size)
    return (mean, mean - half, mean + half)


def profit_by_strategy(con: duckdb.DuckDBPyConnection, run_id: int) -> pl.DataFrame:
    """Provider profit per strategy: Σ payouts − Σ costs of attempted jobs."""
    return _frame(con, _PROFIT_SQL, {"run": run_id})


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> pl.DataFrame:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return pl.DataFrame(cursor.fetchall(), schema=names, orient="row")


_INVARIANTS_SQL = """
SELECT
  (SELECT count(*) FROM settlements WHERE run_id = $run
     AND (fee_minor + payout_minor <> price_minor OR fee_minor < 0 OR payout_minor < 0)),
  (SELECT count(*) FROM settlements s JOIN outcomes o USING (run_id, work_id)
     WHERE s.run_id = $run AND NOT o.success),
  (SELECT count(*) FROM (SELECT work_id FROM awards WHERE run_id = $run
     GROUP BY work_id HAVING count(*) > 1))
"""


def check_invariants(con: duckdb.DuckDBPyConnection, run_id: int) -> None:
    """Asserts, on the rows read back, what the engine asserted when it built them: every
    settlement conserves its price, only successful work settles, one award per work item."""
    unbalanced, unearned, doubled = con.execute(_INVARIANTS_SQL, {"run": run_id}).fetchall()[0]
    assert unbalanced == 0, f"run {run_id}: {unbalanced} settlements with fee + payout != price"
    assert unearned == 0, f"run {run_id}: {unearned} settlements of failed work"
    assert doubled == 0, f"run {run_id}: {doubled} work items awarded twice"


def run_summary(con: duckdb.DuckDBPyConnection, run_id: int) -> dict[str, Any]:
    """The summary metrics of one run (see the module docstring for definitions); checks the
    run's invariants first."""
    check_invariants(con, run_id)
    cursor = con.execute(_SUMMARY_SQL, {"run": run_id})
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    assert len(rows) == 1
    row = rows[0]
    summary: dict[str, Any] = dict(zip(names, row, strict=True))
    profits = profit_by_strategy(con, run_id)
    summary["profit_by_strategy_minor"] = {
        str(r["strategy"]): int(r["profit_minor"]) for r in profits.iter_rows(named=True)
    }
    summary["attacker_profit_minor"] = sum(
        v for k, v in summary["profit_by_strategy_minor"].items() if k in ATTACKER_STRATEGIES
    )
    mean, low, high = mean_interval(honest_profits(con, run_id))
    summary["honest_profit_per_provider_minor"] = mean
    summary["honest_profit_ci_low_minor"] = low
    summary["honest_profit_ci_high_minor"] = high
    summary["honest_break_even"] = bool(high >= 0) if not math.isnan(high) else None
    return summary


_WELFARE_SQL = """
WITH s AS (SELECT coalesce(sum(w.budget_max_minor - s.price_minor), 0) AS surplus,
                  coalesce(sum(s.fee_minor), 0) AS fees, coalesce(sum(s.payout_minor), 0) AS paid
           FROM settlements s JOIN work w USING (run_id, work_id) WHERE s.run_id = $run),
o AS (SELECT coalesce(sum(cost_minor), 0) AS cost,
             coalesce(sum(cost_minor) FILTER (WHERE NOT success), 0) AS lost
      FROM outcomes WHERE run_id = $run)
SELECT $run, s.surplus, s.paid - o.cost, s.fees, o.lost, s.surplus + (s.paid - o.cost) + s.fees
FROM s, o
"""


def store_welfare(con: duckdb.DuckDBPyConnection, run_id: int) -> None:
    """Writes the run's welfare row (schema.WELFARE_DDL) from its settlements and outcomes."""
    con.execute("DELETE FROM welfare WHERE run_id = $run", {"run": run_id})
    con.execute(f"INSERT INTO welfare {_WELFARE_SQL}", {"run": run_id})


def summary_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row of summary metrics per run in the database, with the run's seed and weights."""
    run_rows = con.execute("SELECT run_id, scenario, seed, weights_json FROM runs ORDER BY run_id")
    rows = []
    for run_id, scenario, seed, weights_json in list(run_rows.fetchall()):
        summary = run_summary(con, run_id)
        summary.pop("profit_by_strategy_minor")
        rows.append(
            {
                "run_id": run_id,
                "scenario": scenario,
                "seed": seed,
                "weights_json": weights_json,
                **summary,
            }
        )
    return pl.DataFrame(rows)
