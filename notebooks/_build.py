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

SIZES_NOTE = "Sizes: `AEX_NOTEBOOK_SIZE=small` (the default, what `make test` executes in seconds) or `full` (what `make lab` sets: the study at a size whose intervals mean something)."

nb(HERE / "01_weight_tuning.ipynb", [
    new_markdown_cell("# Weight tuning\n\nSearch the weight simplex with differential evolution on a small mixed market (common random numbers across candidates), then compare the tuned weights with the spec's balanced preset on fresh seeds, and backtest a recorded run under the tuned weights. `aex tune` runs the same search from the command line.\n\n" + SIZES_NOTE),
    new_code_cell("""import dataclasses
import os

import altair as alt
import polars as pl

from aex.sim import _core
from aex.sim.backtest import backtest
from aex.sim.runner import simulate
from aex.sim.scenario import scenario_named
from aex.sim.sweep import ProcessExecutor, SerialExecutor
from aex.sim.tune import WEIGHT_FIELDS, tune

SIZE = os.environ.get("AEX_NOTEBOOK_SIZE", "small")
SIZES = {
    # small: a smoke run of every step; full: `aex tune`'s defaults on every core
    "small": {"ticks": 4, "seeds": 1, "check_seeds": 3, "maxiter": 1, "popsize": 1, "backtest_ticks": 15},
    "full": {"ticks": 60, "seeds": 3, "check_seeds": 8, "maxiter": 5, "popsize": 4, "backtest_ticks": 100},
}
size = SIZES[SIZE]
executor = ProcessExecutor() if SIZE == "full" else SerialExecutor()

scenario = dataclasses.replace(scenario_named("default"), ticks=size["ticks"])
result = tune(
    [scenario],
    seeds=list(range(1, size["seeds"] + 1)),
    check_seeds=list(range(2, 2 + size["check_seeds"])),
    maxiter=size["maxiter"],
    popsize=size["popsize"],
    executor=executor,
)
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
    new_code_cell("""run, con = simulate(dataclasses.replace(scenario, ticks=size["backtest_ticks"]))
backtest(con, run.run_id, result.weights).summary"""),
])

nb(HERE / "02_market_growth.ipynb", [
    new_markdown_cell("# A year of market growth\n\nOne tick is a day: work posted grows 1% a day and providers join over the first half year. Prices, fill rate and concentration per month come straight from the DuckDB market log.\n\n" + SIZES_NOTE + " The full size is the same year in a market three times larger (work and providers)."),
    new_code_cell("""import dataclasses
import os

import altair as alt
import polars as pl

from aex.sim.runner import simulate
from aex.sim.scenario import scenario_named

SIZE = os.environ.get("AEX_NOTEBOOK_SIZE", "small")
SCALE = {"small": 1, "full": 3}[SIZE]  # work posted and providers, x the small market's

base = scenario_named("default")
market = dataclasses.replace(
    base.market, work_per_tick=4 * SCALE, work_growth_per_tick=0.01, work_per_tick_max=120 * SCALE
)
providers = tuple(dataclasses.replace(g, count=g.count * SCALE, join_tick_max=180) for g in base.providers)
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

nb(HERE / "03_incentives.ipynb", [
    new_markdown_cell("""# Incentives: does any strategy pay better than honesty?

The incentive test of docs/market-design.md ("Incentive tests: deviation gain"), on the attack market (`scenarios/attacks.toml`): for each strategy S and seed, the market is run as written and again with three of its honest providers switched to S, everything else equal (common random numbers). The **deviation gain** is the switched providers' mean profit playing S minus their profit playing honest, in USD per provider per run; the interval is a 95% Student-t over seeds (`aex/sim/incentives.py` `deviation_gains`). Honest against honest is 0 by construction.

It is measured twice, under the exchange's two confidence settings: the spec's **plain** stated confidence (the default) and **calibrated** confidence (the claim shrunk toward the provider's record: docs/scoring.md "Confidence calibration"; a scenario selects it in `[scoring] calibration`, a rules file in `confidence_calibration`).

Then the **break-even check**: honest providers' realised profit per provider (payouts - costs), its 95% interval over seeds, under both settings.

""" + SIZES_NOTE),
    new_code_cell("""import dataclasses
import os

import altair as alt
import polars as pl

from aex.marketlog.metrics import mean_interval
from aex.sim import incentives, strategies
from aex.sim.scenario import scenario_named
from aex.sim.sweep import ProcessExecutor, SerialExecutor, SweepTask, sweep

SIZE = os.environ.get("AEX_NOTEBOOK_SIZE", "small")
SIZES = {"small": {"seeds": 3, "ticks": 20}, "full": {"seeds": 20, "ticks": 200}}
size = SIZES[SIZE]
executor = ProcessExecutor() if SIZE == "full" else SerialExecutor()

plain = dataclasses.replace(scenario_named("attacks"), ticks=size["ticks"])
# the exchange's calibration with its default tunables (aex/core/calibration.py)
calibration = {"evidence_contracts": 10.0, "prior_alpha": 1.0, "prior_beta": 1.0}
calibrated = dataclasses.replace(plain, scoring=dataclasses.replace(plain.scoring, calibration=calibration))
settings = {"plain": plain, "calibrated": calibrated}  # the confidence setting
seeds = incentives.seeds_for(plain, size["seeds"])
names = list(strategies.NAMES)
f"{SIZE}: {len(seeds)} seeds ({seeds[0]}..{seeds[-1]}), {plain.ticks} ticks, {len(names)} strategies\""""),
    new_code_cell("""gains = pl.concat(
    [
        incentives.deviation_gains(params, names, seeds, executor=executor).with_columns(
            setting=pl.lit(setting)
        )
        for setting, params in settings.items()
    ]
)
# side by side: each setting's mean and interval, USD per provider per run
table = gains.pivot(on="setting", index="strategy", values=["mean", "ci_low", "ci_high"]).select(
    "strategy", *(f"{v}_{s}" for s in settings for v in ("mean", "ci_low", "ci_high"))
)
with pl.Config(tbl_rows=-1, float_precision=3, tbl_hide_dataframe_shape=True):
    display(table)"""),
    new_markdown_cell("""### How to read the chart

Each point is a strategy's mean deviation gain (USD per provider per run); the bar is its 95% interval over seeds; left plain confidence, right calibrated. A strategy **pays** when its whole interval lies right of 0 (a red point): the exchange's rules reward it over honesty. An interval across 0 is not distinguishable from honesty at this many seeds; one left of 0 loses money. The question calibration answers is whether overclaiming confidence (`overconfident`, the `bandit` that learns its claim) stops paying. At the small size the intervals are wide and the verdicts are not to be trusted; run the full size (`make lab`) for them."""),
    new_code_cell("""pays = alt.condition(alt.datum.ci_low > 0, alt.value("firebrick"), alt.value("steelblue"))
base = alt.Chart().encode(y=alt.Y("strategy:N", sort=names, title=None))
bars = base.mark_rule().encode(x=alt.X("ci_low:Q", title="deviation gain, USD per provider per run"), x2="ci_high:Q")
points = base.mark_point(filled=True, size=60).encode(x="mean:Q", color=pays, tooltip=["strategy", "mean", "ci_low", "ci_high"])
zero = alt.Chart().mark_rule(strokeDash=[4, 4], color="gray").encode(x=alt.datum(0))
alt.layer(bars, points, zero, data=gains).facet(
    column=alt.Column("setting:N", sort=list(settings), title="confidence")
).resolve_scale(x="independent")"""),
    new_markdown_cell("""### Break even: do honest providers make money?

One run per seed and setting (`aex/sim/sweep.py` `sweep`); each run's honest profit per provider is the mean over its honest providers (`aex/marketlog/metrics.py`, as `aex sim --replications N` prints it). Below: its mean over seeds with a 95% interval, in USD. Honest providers **break even** when the interval's upper bound is at least 0 (`break_even`); a lower bound above 0 means they profit. A market whose honest providers lose money would drive them out, whatever the deviation gains say."""),
    new_code_cell("""tasks = [
    SweepTask(dataclasses.replace(params, seed=seed), label=setting)
    for setting, params in settings.items()
    for seed in seeds
]
runs = sweep(tasks, executor)
rows = []
for setting in settings:
    per_seed = runs.filter(pl.col("label") == setting)["honest_profit_per_provider_minor"].to_list()
    mean, low, high = (v / 100 for v in mean_interval(per_seed))
    rows.append({"setting": setting, "mean": mean, "ci_low": low, "ci_high": high, "seeds": len(per_seed),
                 "break_even": high >= 0})
honest = pl.DataFrame(rows)
honest"""),
    new_code_cell("""chart = alt.Chart(honest).encode(y=alt.Y("setting:N", title=None))
(
    chart.mark_rule().encode(x=alt.X("ci_low:Q", title="honest profit per provider, USD per run"), x2="ci_high:Q")
    + chart.mark_point(filled=True, size=80).encode(x="mean:Q", tooltip=["setting", "mean", "ci_low", "ci_high"])
    + alt.Chart(honest).mark_rule(strokeDash=[4, 4], color="gray").encode(x=alt.datum(0))
)"""),
])

nb(HERE / "04_sensitivity.ipynb", [
    new_markdown_cell("""# Sensitivity of welfare to the scenario

Which scenario parameters move the market's welfare, and which barely matter? Morris elementary effects (SALib) over the default parameter set, `scenarios/sensitivity.toml`: each parameter has a dotted path into the scenario and bounds, and every sample point runs on the same seeds (common random numbers), so two points differ by their parameters, not by their luck.

Four measures, USD: total welfare per posted work item (consumer surplus + provider profit + fees), consumer surplus per work item, the mean profit of an honest provider, and the platform's fee per work item.

`AEX_NOTEBOOK_SIZE=small` (the default, what `make test` executes) runs a few short trajectories; `full` (for `make lab`) runs the size of the table in docs/market-design.md. `aex sensitivity` runs the same analysis from the command line."""),
    new_code_cell("""import dataclasses
import os

import altair as alt
import polars as pl

from aex.sim import incentives, sensitivity
from aex.sim.scenario import scenario_named
from aex.sim.sweep import ProcessExecutor, SerialExecutor

SIZE = os.environ.get("AEX_NOTEBOOK_SIZE", "small")
ticks, trajectories, seed_count = {"small": (5, 2, 2), "full": (60, 10, 2)}[SIZE]

chosen = sensitivity.load_parameters()
base = dataclasses.replace(scenario_named(chosen.scenario), ticks=ticks)
seeds = incentives.seeds_for(base, seed_count)
executor = ProcessExecutor(os.cpu_count()) if SIZE == "full" else SerialExecutor()
result = sensitivity.morris(base, chosen.parameters, seeds=seeds, trajectories=trajectories,
                            executor=executor)
if isinstance(executor, ProcessExecutor):
    executor.close()
print(f"{result.evaluations} runs: {len(result.points)} points x seeds {list(seeds)}, {ticks} ticks")
pl.DataFrame([dataclasses.asdict(p) for p in chosen.parameters])"""),
    new_markdown_cell("""## The indices

mu_star is the mean absolute elementary effect: how much the measure moves (USD) when the parameter crosses its whole range, one step at a time from many starting points. mu_star_conf is the half-width of its 95% bootstrap interval over the trajectories, mu the signed mean (the direction) and sigma the spread of the effects: a sigma as large as mu_star means the effect depends on where the other parameters stand (non-linearity or interaction)."""),
    new_code_cell("""with pl.Config(tbl_rows=-1, float_precision=3):
    display(result.indices["total_welfare_per_work"].sort("mu_star", descending=True))"""),
    new_code_cell("""table = result.table().with_columns(
    low=(pl.col("mu_star") - pl.col("mu_star_conf")).clip(lower_bound=0),
    high=pl.col("mu_star") + pl.col("mu_star_conf"),
)
order = result.indices["total_welfare_per_work"].sort("mu_star", descending=True)["parameter"].to_list()
y = alt.Y("parameter", sort=order, title=None)
bars = alt.Chart().mark_rule().encode(x=alt.X("low", title="mu_star (USD), 95% interval"), x2="high", y=y)
points = alt.Chart().mark_point(filled=True, size=40).encode(
    x="mu_star", y=y, tooltip=["parameter", "mu_star", "mu_star_conf", "sigma", "mu"]
)
alt.layer(bars, points, data=table).properties(width=260, height=220).facet(
    facet=alt.Facet("measure", sort=list(sensitivity.MEASURES)), columns=2
).resolve_scale(x="independent")"""),
    new_code_cell("""def ranked(measure, top=3):
    frame = result.indices[measure].sort("mu_star", descending=True)
    return ", ".join(f"{r['parameter']} ({r['mu_star']:.2f} ± {r['mu_star_conf']:.2f}, {'+' if r['mu'] >= 0 else '-'})"
                     for r in frame.head(top).iter_rows(named=True))

for measure in sensitivity.MEASURES:
    print(f"{measure}: {ranked(measure)}")
control = result.indices["total_welfare_per_work"].filter(pl.col("parameter") == "market.entry_per_block")
print("control market.entry_per_block, mu_star:", control["mu_star"].item())"""),
    new_markdown_cell("""## What it means

- **The control reads 0.** No group of the default scenario enters on profit, so `market.entry_per_block` changes nothing; with common random numbers its every elementary effect is exactly 0. Were the analysis miswired (values not applied, columns swapped, seeds differing between points), it would not be.
- **Demand and honest supply decide welfare.** In the moderate run of docs/market-design.md (the `full` size here, same seeds and sampler seed) the budget level (`market.budget_max_major`, 1.87 ± 0.44) and the share of large work items (1.71 ± 0.55) move total welfare per work item the most, then the honest providers' quality (`providers[0].quality_alpha`, 0.47) and bid rate (0.43), all upwards (mu > 0): consumers value finished work at its budget, so larger budgets, more successful work and more honest bids all add surplus. More attackers (`attacker_share`, 0.28, mu < 0) lower it.
- **The fee is a transfer.** A higher `scoring.fee_bps` lowers consumer surplus (mu −0.28) and honest profit, raises the fee per work item (+0.32) by about as much, and leaves total welfare nearly where it was (mu_star 0.06): what consumers and providers lose, the platform gains.
- **Small effects are not no effects.** Parameters with small mu_star (dispute probability, required turnaround, the honest markup ceiling) matter little over these bounds; a parameter whose interval still reaches far above 0 needs more trajectories before it is ruled out. In the small size the intervals are wide: few trajectories, short runs.
- Sobol indices (`sensitivity.sobol`, `aex sensitivity --method sobol`) split the variance of each measure into first-order and total shares when the ranking needs more than screening."""),
])
