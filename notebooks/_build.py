"""Regenerates the workbench notebooks (stored without outputs): python notebooks/_build.py."""
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent
from nbformat.v4 import new_notebook, new_markdown_cell, new_code_cell

def nb(path, cells):
    book = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    for index, cell in enumerate(book.cells):
        cell.id = f"{path.stem[:2]}-{index:02d}"  # stable ids: regenerating changes nothing
    nbf.write(book, path)

nb(HERE / "01_weight_tuning.ipynb", [
    new_markdown_cell("# Weight tuning\n\nSearch the weight simplex with differential evolution on a small mixed market (common random numbers across candidates), then compare the tuned weights with the spec's balanced preset on fresh seeds, and backtest a recorded run under the tuned weights. Kept tiny so that `make test` executes it in seconds; `aex tune` runs the same search at full size."),
    new_code_cell("""import dataclasses

import altair as alt
import polars as pl

from aex.sim import _core
from aex.sim.backtest import backtest
from aex.sim.runner import simulate
from aex.sim.scenario import scenario_named
from aex.sim.tune import WEIGHT_FIELDS, tune

scenario = dataclasses.replace(scenario_named("default"), ticks=4)
result = tune([scenario], seeds=[1], check_seeds=[2, 3, 4], maxiter=1, popsize=1)
result"""),
    new_code_cell("""weights = pl.DataFrame(
    {
        "component": list(WEIGHT_FIELDS) * 2,
        "weight": [getattr(result.weights, f) for f in WEIGHT_FIELDS]
        + [getattr(_core.PRESETS["balanced"], f) for f in WEIGHT_FIELDS],
        "weights": ["tuned"] * 6 + ["balanced"] * 6,
    }
)
alt.Chart(weights).mark_bar().encode(x="component", y="weight", color="weights", xOffset="weights")"""),
    new_code_cell("""pl.DataFrame(
    [
        {"weights": name, "mean": e.mean, "ci_low": e.low, "ci_high": e.high}
        for name, e in (("tuned", result.tuned), ("balanced", result.baseline),
                        ("tuned - balanced", result.difference))
    ]
)"""),
    new_code_cell("""run, con = simulate(dataclasses.replace(scenario, ticks=15))
backtest(con, run.run_id, result.weights).summary"""),
])

nb(HERE / "02_market_growth.ipynb", [
    new_markdown_cell("# A year of market growth\n\nOne tick is a day: work posted grows 1% a day and providers join over the first half year. Prices, fill rate and concentration per month come straight from the DuckDB market log."),
    new_code_cell("""import dataclasses

import altair as alt
import polars as pl

from aex.sim.runner import simulate
from aex.sim.scenario import scenario_named

base = scenario_named("default")
market = dataclasses.replace(base.market, work_per_tick=4, work_growth_per_tick=0.01, work_per_tick_max=120)
providers = tuple(dataclasses.replace(g, join_tick_max=180) for g in base.providers)
year = dataclasses.replace(base, ticks=365, block_ticks=10, market=market, providers=providers,
                           log=dataclasses.replace(base.log, bids="none"))
run, con = simulate(year)
run"""),
    new_code_cell("""def frame(sql):
    cursor = con.execute(sql)
    return pl.DataFrame(cursor.fetchall(), schema=[d[0] for d in cursor.description], orient="row")

monthly = frame('''
    SELECT w.tick // 30 AS month, count(*) AS work_items, count(a.work_id) AS awards,
           avg(a.price_minor) / 100 AS price_mean, avg(o.success::DOUBLE) AS success_rate
    FROM work w LEFT JOIN awards a USING (run_id, work_id) LEFT JOIN outcomes o USING (run_id, work_id)
    GROUP BY month ORDER BY month''')
monthly"""),
    new_code_cell("""alt.Chart(monthly).mark_line(point=True).encode(x="month", y="work_items") | alt.Chart(
    monthly
).mark_line(point=True).encode(x="month", y="price_mean")"""),
    new_code_cell("""frame('''
    SELECT tick // 30 AS month, sum(s * s) * 10000 AS hhi FROM (
        SELECT tick, provider_id, count(*) / sum(count(*)) OVER (PARTITION BY tick // 30) AS s
        FROM awards GROUP BY tick // 30, tick, provider_id)
    GROUP BY month ORDER BY month''').head()"""),
])

nb(HERE / "03_attacks.ipynb", [
    new_markdown_cell("# Attack scenarios\n\nThe default market mixes honest providers with overconfident ones, low-ballers, reputation farmers, whitewashers and learning bidders. Who wins, who profits, and does the balanced preset protect consumers better than pure price competition?"),
    new_code_cell("""import dataclasses

import altair as alt
import polars as pl

from aex import marketlog
from aex.sim import _core
from aex.sim.runner import simulate, with_weights
from aex.sim.scenario import scenario_named

scenario = dataclasses.replace(scenario_named("default"), ticks=40)
runs = {}
for preset in ("balanced", "lowest_price", "best_quality"):
    run, con = simulate(with_weights(scenario, _core.PRESETS[preset]))
    runs[preset] = (run, con)
summaries = pl.DataFrame(
    [{"weights": k, **{m: v for m, v in marketlog.run_summary(con, r.run_id).items()
                       if m != "profit_by_strategy_minor"}} for k, (r, con) in runs.items()]
)
summaries.select("weights", "success_rate", "consumer_surplus_minor", "attacker_profit_minor", "honest_win_share", "hhi")"""),
    new_code_cell("""profits = pl.concat(
    [marketlog.metrics.profit_by_strategy(con, r.run_id).with_columns(weights=pl.lit(k))
     for k, (r, con) in runs.items()]
)
alt.Chart(profits).mark_bar().encode(x="strategy", y="profit_minor", color="weights", xOffset="weights")"""),
    new_code_cell("""run, con = runs["balanced"]
cursor = con.execute('''
    SELECT a.tick // 10 AS period, p.strategy, count(*) AS awards
    FROM awards a JOIN providers p USING (run_id, provider_id) GROUP BY ALL ORDER BY ALL''')
shares = pl.DataFrame(cursor.fetchall(), schema=["period", "strategy", "awards"], orient="row")
alt.Chart(shares).mark_area().encode(x="period", y=alt.Y("awards", stack="normalize"), color="strategy")"""),
])
