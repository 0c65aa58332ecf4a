"""Incentive tests: the deviation gain of every strategy, with a 95% interval over seeds.

The question each row answers: would a provider that plays honest earn more by playing this
strategy instead? For one seed, the market is run twice with common random numbers (the same
seed, scenario and weights, so the same population, work, bidders, markup and outcome
uniforms): once as the scenario says, once with `deviators` of its honest providers switched to
the strategy (their drawn quality, cost, SLA, certificates and category unchanged; only the
strategy and its knobs differ). The deviation gain for the seed is the mean over those providers
of (realised profit playing the strategy − realised profit playing honest), in major units per
provider per run; realised profit is payouts − costs of every attempt − the fees of wash trades,
summed over every identity the provider used (a sybil's or whitewasher's). Honest against
honest is therefore exactly 0. The interval is Student-t over seeds (scipy.stats).

Group strategies: a collusion ring is the switched providers together (with any collusion
group the scenario already has), so its gain is per ring member. A self-dealer's fees are its
owner's cost. A certificate farmer's self-asserted certificates count only as the core's
counts_toward_certification rules (they do not), so its gain is 0 whenever that rule holds.

The switched providers' knobs are the scenario's own group's for that strategy when it has one,
else the strategy's defaults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from aex.marketlog.metrics import mean_interval
from aex.sim import engine, strategies
from aex.sim.scenario import ScenarioParams
from aex.sim.sweep import Executor, SerialExecutor

__all__ = [
    "DEVIATORS_DEFAULT",
    "DeviationTask",
    "binding_constraint",
    "deviation_gains",
    "focal_slots",
    "play",
    "seeds_for",
    "switch_strategy",
]

DEVIATORS_DEFAULT = 3
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def focal_slots(population: engine.Population, count: int) -> I64:
    """The honest providers that deviate: the first `count` honest slots present from the first
    tick (none waiting to join or to enter on profit), in slot order."""
    honest = population.strategy_code == strategies.CODE["honest"]
    present = (population.join_tick == 0) & ~population.enters_on_profit
    slots = np.flatnonzero(honest & present)[:count].astype(np.int64)
    assert slots.size == count, f"the scenario has {slots.size} honest providers to switch"
    return slots


def _knobs(params: ScenarioParams, name: str) -> dict[str, float]:
    spec = strategies.strategy_named(name)
    for group in params.providers:
        if group.strategy == name:
            return {**spec.defaults, **group.params}
    return dict(spec.defaults)


def switch_strategy(
    population: engine.Population, slots: I64, name: str, params: ScenarioParams
) -> engine.Population:
    """The population with `slots` playing strategy `name` (everything drawn left as is)."""
    spec = strategies.strategy_named(name)
    knobs = _knobs(params, name)
    code = population.strategy_code.copy()
    code[slots] = spec.code
    columns = {k: v.copy() for k, v in population.params.items()}
    for key in columns:
        columns[key][slots] = knobs.get(key, 0.0) if key in spec.defaults else 0.0
    confidence = population.confidence.copy()
    boost = knobs.get("confidence_boost", 0.0)
    confidence[slots] = np.clip(confidence[slots] + boost, 0.0, 1.0)
    return dataclasses.replace(
        population, strategy_code=code, params=columns, confidence=confidence
    )


def play(
    params: ScenarioParams,
    *,
    replication: int = 0,
    strategy: str | None = None,
    deviators: int = DEVIATORS_DEFAULT,
) -> tuple[engine.Population, engine.MarketState, I64]:
    """Runs one market (no market log) with `deviators` honest providers switched to
    `strategy` (None: as the scenario says); returns the population, the final state and the
    switched slots."""
    assert params.seed is not None, "incentive runs need a recorded seed"
    streams = engine.Streams.spawn(params.seed, replication)
    population, state = engine.init(streams.population, params)
    slots = focal_slots(population, deviators)
    if strategy is not None:
        population = switch_strategy(population, slots, strategy, params)
    weights = params.weights
    while state.tick < params.ticks:
        state, _ = engine.step(streams, state, params, population, weights)
    return population, state, slots


@dataclass(frozen=True, slots=True)
class DeviationTask:
    """One run of the incentive test: a seeded scenario and the strategy its deviators play
    (None: the honest baseline)."""

    params: ScenarioParams
    strategy: str | None
    deviators: int = DEVIATORS_DEFAULT


def focal_profit(task: DeviationTask) -> F64:
    """The deviators' realised profit (minor units, one per deviator) in the task's market."""
    _, state, slots = play(task.params, strategy=task.strategy, deviators=task.deviators)
    return np.asarray(state.profit_minor[slots], dtype=np.float64)


def seeds_for(params: ScenarioParams, count: int) -> tuple[int, ...]:
    """`count` seeds from the scenario's seed (0 when it has none): seed, seed + 1, ..."""
    base = params.seed if params.seed is not None else 0
    return tuple(base + i for i in range(count))


def deviation_gains(
    scenario: ScenarioParams,
    strategy_names: Iterable[str],
    seeds: Sequence[int],
    *,
    deviators: int = DEVIATORS_DEFAULT,
    executor: Executor | None = None,
) -> pl.DataFrame:
    """Deviation gain per strategy (USD per provider per run): columns strategy, mean, ci_low,
    ci_high (95% Student-t over seeds), n_seeds, deviators. See the module docstring."""
    names = list(strategy_names)
    for name in names:
        strategies.strategy_named(name)  # KeyError naming the known strategies
    pool: Executor = executor if executor is not None else SerialExecutor()
    seeded = [dataclasses.replace(scenario, seed=int(seed)) for seed in seeds]
    tasks = [DeviationTask(p, None, deviators) for p in seeded]
    tasks += [DeviationTask(p, name, deviators) for name in names for p in seeded]
    profits = pool.map(focal_profit, tasks)
    n = len(seeded)
    base = profits[:n]
    rows = []
    for i, name in enumerate(names):
        played = profits[n * (i + 1) : n * (i + 2)]
        gains = [
            float(np.mean(d - b)) / engine.MINOR_PER_MAJOR
            for d, b in zip(played, base, strict=True)
        ]
        mean, low, high = mean_interval(gains)
        rows.append(
            {
                "strategy": name,
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
                "n_seeds": n,
                "deviators": deviators,
            }
        )
    return pl.DataFrame(rows)


def binding_constraint(
    rows: Iterable[Mapping[str, Any]], strategy_names: Iterable[str] | None = None
) -> Mapping[str, Any] | None:
    """The incentive constraint that binds: of the gain rows (each strategy, per scenario, its
    own constraint: no sum before the max), the one with the largest upper interval bound,
    among `strategy_names` (None: every row); None when there is none."""
    keep = None if strategy_names is None else frozenset(strategy_names)
    picked = [r for r in rows if keep is None or r["strategy"] in keep]
    return max(picked, key=lambda r: float(r["ci_high"]), default=None)


def worst_upper_bound(gains: pl.DataFrame) -> float:
    """The tuner's incentive constraint: the largest upper interval bound of any one strategy
    (binding_constraint's), 0 without rows."""
    row = binding_constraint(gains.iter_rows(named=True))
    return float(row["ci_high"]) if row is not None else 0.0
