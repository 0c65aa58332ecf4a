from __future__ import annotations

import dataclasses

import pytest

from aex.sim.scenario import ScenarioParams, load_scenario, scenario_named


def small(params: ScenarioParams, **changes: object) -> ScenarioParams:
    return dataclasses.replace(params, **changes)  # type: ignore[arg-type]


@pytest.fixture
def reference() -> ScenarioParams:
    params = scenario_named("reference_reverse_auction")
    market = dataclasses.replace(params.market, work_per_tick=20)
    provider = dataclasses.replace(params.providers[0], count=200)
    log = dataclasses.replace(params.log, bids="all")
    return dataclasses.replace(
        params, ticks=12, block_ticks=4, market=market, providers=(provider,), log=log
    )


@pytest.fixture
def mixed() -> ScenarioParams:
    params = load_scenario("default")
    return dataclasses.replace(params, ticks=30)
