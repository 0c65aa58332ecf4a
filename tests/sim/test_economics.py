"""The simulator's economics: cost is paid for every attempt and scales with the work, honest
prices allow for failure and the fee, late outcomes and disputes happen, providers leave when
they lose money and enter when the market pays, and honest providers break even."""

from __future__ import annotations

import dataclasses

import numpy as np

from aex import marketlog
from aex.core.reputation import OutcomeKind
from aex.sim import engine, strategies
from aex.sim.runner import simulate
from aex.sim.scenario import ScenarioParams, load_scenario


def run_blocks(params: ScenarioParams) -> tuple[engine.Population, list[engine.BlockLog]]:
    streams = engine.Streams.spawn(params.seed or 0, 0)
    population, state = engine.init(streams.population, params)
    logs = []
    while state.tick < params.ticks:
        state, log = engine.step(streams, state, params, population, params.weights)
        logs.append(log)
    return population, logs


def concat(logs: list[engine.BlockLog], table: str) -> dict[str, np.ndarray]:
    parts = [log.tables[table] for log in logs if table in log.tables]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def test_honest_providers_break_even_on_the_default_market() -> None:
    params = dataclasses.replace(load_scenario("default"), ticks=80)
    result, con = simulate(params)
    summary = marketlog.run_summary(con, result.run_id)
    assert summary["honest_break_even"] is True
    assert summary["honest_profit_ci_low_minor"] > 0, summary


def test_failed_work_costs_its_provider_and_large_work_costs_more() -> None:
    params = load_scenario("default")
    params = dataclasses.replace(
        params,
        ticks=30,
        market=dataclasses.replace(params.market, large_work_probability=0.5),
        providers=(dataclasses.replace(params.providers[0], count=60),),
    )
    population, logs = run_blocks(params)
    outcomes, work = concat(logs, "outcomes"), concat(logs, "work")
    large = dict(zip(work["work_id"].tolist(), work["large"].tolist(), strict=True))
    slot = outcomes["provider_id"] - 1  # honest only: identities are slots + 1
    unit = population.cost_minor[slot]
    size = np.where([large[w] for w in outcomes["work_id"].tolist()], 10.0, 1.0)
    assert np.array_equal(outcomes["cost_minor"], np.rint(unit * size).astype(np.int64))
    failed = ~outcomes["success"]
    assert failed.any()
    assert bool((outcomes["cost_minor"][failed] > 0).all())
    assert bool(np.asarray([large[w] for w in outcomes["work_id"].tolist()]).any())


def test_honest_prices_cover_cost_fee_and_expected_failures() -> None:
    params = dataclasses.replace(load_scenario("default"), ticks=20)
    population, logs = run_blocks(params)
    bids, work = concat(logs, "bids"), concat(logs, "work")
    first = bids["provider_id"] <= population.size  # first identities: slot + 1
    bids = {k: v[first] for k, v in bids.items()}
    size_of = dict(
        zip(work["work_id"].tolist(), np.where(work["large"], 10.0, 1.0).tolist(), strict=True)
    )
    slot = bids["provider_id"] - 1
    honest = population.strategy_code[slot] == strategies.CODE["honest"]
    size = np.array([size_of[w] for w in bids["work_id"].tolist()])
    break_even = population.cost_minor[slot] * size / (0.85 * population.expected_paid[slot])
    # markups are >= 0.25 for honest providers here: the expected payout exceeds the cost
    assert bool((bids["price_minor"][honest] >= np.floor(break_even[honest] * 1.25)).all())


def test_late_deliveries_and_both_dispute_results_occur() -> None:
    params = load_scenario("default")
    params = dataclasses.replace(
        params, ticks=60, market=dataclasses.replace(params.market, dispute_probability=0.1)
    )
    _, logs = run_blocks(params)
    kinds = set(np.concatenate([log.contracts["kind"] for log in logs]).tolist())
    assert {int(k) for k in OutcomeKind} <= kinds


def test_losing_providers_exit_and_entrants_join_while_the_market_pays() -> None:
    params = load_scenario("default")
    losers = dataclasses.replace(
        params.providers[0], count=20, markup_min=-0.6, markup_max=-0.4, bid_probability=0.3
    )
    entrants = dataclasses.replace(params.providers[0], count=20, enters_on_profit=True)
    base = dataclasses.replace(params.providers[0], count=60)
    params = dataclasses.replace(
        params,
        ticks=100,
        market=dataclasses.replace(params.market, exit_min_contracts=10, categories=1),
        providers=(base, losers, entrants),
    )
    streams = engine.Streams.spawn(7, 0)
    population, state = engine.init(streams.population, params)
    entrant = population.enters_on_profit
    assert not bool(state.active[entrant].any())
    while state.tick < params.ticks:
        state, _ = engine.step(streams, state, params, population, params.weights)
    below_cost = population.markup_max < 0
    assert not bool(state.active[below_cost].all()), "providers pricing below cost stay in"
    left = below_cost & ~state.active
    assert bool((state.profit_minor[left] < 0).all())
    assert bool(state.active[entrant].any()), "no entrant joined a profitable market"
