"""Global sensitivity of welfare (aex/sim/sensitivity.py, `aex sensitivity`)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from aex.cli import main
from aex.sim import sensitivity, strategies
from aex.sim.runner import simulate
from aex.sim.scenario import SCENARIOS, ScenarioError, ScenarioParams, scenario_named
from aex.sim.sensitivity import Parameter, ParameterError, get_parameter, with_parameter
from aex.sim.sweep import SweepTask, evaluate

# A control that provably does nothing in the default scenario (no group enters on profit),
# and the budget level, which consumer surplus cannot ignore.
DUMMY = Parameter("market.entry_per_block", 0, 5)
BUDGET = Parameter("market.budget_max_major", 2.0, 5.0)


@pytest.fixture(scope="module")
def tiny() -> ScenarioParams:
    return dataclasses.replace(scenario_named("default"), ticks=6)


@pytest.fixture(scope="module")
def screened(tiny: ScenarioParams) -> sensitivity.SensitivityResult:
    return sensitivity.morris(tiny, [DUMMY, BUDGET], seeds=(1, 2), trajectories=4)


def test_with_parameter_rebuilds_the_path_and_rounds_int_fields(tiny: ScenarioParams) -> None:
    made = with_parameter(tiny, "market.budget_max_major", 4.5)
    assert made.market.budget_max_major == 4.5
    assert made.market == dataclasses.replace(tiny.market, budget_max_major=4.5)
    assert tiny.market.budget_max_major == 3.0  # the original is untouched
    fee = with_parameter(tiny, "scoring.fee_bps", 1234.6)
    assert fee.scoring.fee_bps == 1235
    assert isinstance(fee.scoring.fee_bps, int)
    group = with_parameter(tiny, "providers[4].markup_max", 0.2)
    assert group.providers[4].markup_max == 0.2
    assert group.providers[:4] == tiny.providers[:4]
    assert group.providers[5:] == tiny.providers[5:]
    assert with_parameter(tiny, "ticks", 9.4).ticks == 9


def test_every_default_parameter_round_trips_and_applies_at_its_bounds(
    tiny: ScenarioParams,
) -> None:
    chosen = sensitivity.load_parameters()
    assert chosen.scenario == "default"
    assert len(chosen.parameters) >= 10
    for p in chosen.parameters:
        assert with_parameter(tiny, p.path, get_parameter(tiny, p.path)) == tiny, p.path
        for value in (p.low, p.high):
            made = with_parameter(tiny, p.path, value)
            assert get_parameter(made, p.path) == pytest.approx(value, rel=0.02), p.path
    assert "sensitivity" not in SCENARIOS  # the parameter file is not a scenario


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("market.nope", "market.nope is not a field; known fields there: work_per_tick"),
        ("providers[9].count", "providers has 6 entries, no [9]"),
        ("providers.count", "providers is a list; pick one entry"),
        ("market[0].categories", "market is not a list"),
        ("market", "market is a table"),
        ("providers[0]", "providers[0] is a table"),
        ("name", "name is not a number"),
        ("seed", "seed is not a number"),
        ("providers[0].params", "providers[0].params is not a number"),
        ("market.budget_max_major.x", "is a float; it has no fields"),
        ("market..x", "not a dotted path"),
        ("budget max", "not a dotted path"),
    ],
)
def test_with_parameter_refuses_a_bad_path_naming_it(
    tiny: ScenarioParams, path: str, said: str
) -> None:
    with pytest.raises(ParameterError) as caught:
        with_parameter(tiny, path, 1.0)
    assert str(caught.value).startswith(f"{path}: ")
    assert said in str(caught.value)


def test_with_parameter_refuses_values_that_make_no_scenario(tiny: ScenarioParams) -> None:
    with pytest.raises(ParameterError, match=r"^market\.budget_max_major: nan"):
        with_parameter(tiny, "market.budget_max_major", math.nan)
    with pytest.raises(ScenarioError, match=r"^market.budget_min_major: bad range"):
        with_parameter(tiny, "market.budget_max_major", 0.5)
    with pytest.raises(ParameterError, match=r"at market.budget_max_major = 0.5"):
        sensitivity.with_parameters(tiny, {"market.budget_max_major": 0.5})


def test_attacker_share_keeps_the_total_and_the_proportions(tiny: ScenarioParams) -> None:
    assert get_parameter(tiny, "attacker_share") == pytest.approx(0.3)
    half = with_parameter(tiny, "attacker_share", 0.5)
    assert half.provider_count == tiny.provider_count
    assert get_parameter(half, "attacker_share") == pytest.approx(0.5)
    counts = {g.strategy: g.count for g in half.providers}
    # 100 attackers as 20:20:10:10, 100 others as 120:20 (largest remainders)
    assert counts == {
        "honest": 86,
        "overconfident": 33,
        "low_baller": 33,
        "reputation_farmer": 17,
        "whitewasher": 17,
        "learning": 14,
    }
    none = with_parameter(tiny, "attacker_share", 0.0)
    assert not any(g.strategy in strategies.ATTACKER_STRATEGIES for g in none.providers)
    assert none.provider_count == tiny.provider_count
    with pytest.raises(ParameterError, match=r"^attacker_share: 1.0 is not in \[0, 1\)"):
        with_parameter(tiny, "attacker_share", 1.0)
    honest_only = dataclasses.replace(tiny, providers=tiny.providers[:1])
    with pytest.raises(ParameterError, match="needs both attacker groups"):
        with_parameter(honest_only, "attacker_share", 0.2)


def test_the_total_welfare_measure_is_the_market_logs_welfare_row(tiny: ScenarioParams) -> None:
    params = dataclasses.replace(tiny, seed=3)
    measures = sensitivity.welfare_of(evaluate(SweepTask(params)))
    result, con = simulate(params, threaded_writer=False)
    total, surplus, fees = con.execute(
        "SELECT total_welfare_minor, consumer_surplus_minor, platform_fees_minor FROM welfare"
    ).fetchall()[0]
    con.close()
    work = result.work_items
    assert measures["total_welfare_per_work"] == pytest.approx(total / work / 100)
    assert measures["consumer_surplus_per_work"] == pytest.approx(surplus / work / 100)
    assert measures["fee_per_work"] == pytest.approx(fees / work / 100)
    assert set(measures) == set(sensitivity.MEASURES)


def test_morris_finds_the_dummy_inert_and_the_budget_level_decisive(
    screened: sensitivity.SensitivityResult,
) -> None:
    # Common random numbers: the dummy's every elementary effect is exactly 0. A miswired
    # analysis (columns swapped, values not applied, seeds differing between points) fails.
    for measure in sensitivity.MEASURES:
        dummy, budget = screened.indices[measure].rows(named=True)
        assert dummy["parameter"] == DUMMY.path
        assert dummy["mu_star"] == 0.0
        assert dummy["sigma"] == 0.0
        assert budget["mu_star"] > 0.0
    surplus = screened.indices["consumer_surplus_per_work"].row(1, named=True)
    assert surplus["parameter"] == BUDGET.path
    assert surplus["mu"] > 0.3  # more budget, more surplus: clearly, and in that direction
    assert surplus["mu_star"] - surplus["mu_star_conf"] > 0.1
    assert screened.evaluations == 4 * 3 * 2
    assert list(screened.indices["fee_per_work"].columns) == [
        "parameter",
        "mu_star",
        "mu_star_conf",
        "sigma",
        "mu",
    ]


def test_morris_is_deterministic_for_a_sampler_seed(
    tiny: ScenarioParams, screened: sensitivity.SensitivityResult
) -> None:
    again = sensitivity.morris(tiny, [DUMMY, BUDGET], seeds=(1, 2), trajectories=4)
    assert (again.points == screened.points).all()
    for measure in sensitivity.MEASURES:
        assert again.indices[measure].equals(screened.indices[measure])
    assert again.to_json() == screened.to_json()
    other = sensitivity.morris(tiny, [DUMMY, BUDGET], seeds=(1, 2), trajectories=4, sampler_seed=1)
    assert not (other.points == screened.points).all()


def test_sobol_gives_the_dummy_no_variance_share(tiny: ScenarioParams) -> None:
    found = sensitivity.sobol(tiny, [DUMMY, BUDGET], seeds=(1,), samples=8)
    assert found.evaluations == 8 * (2 + 2)
    frame = found.indices["consumer_surplus_per_work"]
    assert frame.columns == ["parameter", "S1", "S1_conf", "ST", "ST_conf"]
    dummy, budget = frame.rows(named=True)
    assert dummy["S1"] == 0.0
    assert dummy["ST"] == 0.0
    assert budget["ST"] > 0.5
    with pytest.raises(ValueError, match="power of two"):
        sensitivity.sobol(tiny, [BUDGET], seeds=(1,), samples=6)


def test_parameter_sets_are_checked_before_anything_runs(tiny: ScenarioParams) -> None:
    with pytest.raises(ParameterError, match="given twice"):
        sensitivity.morris(tiny, [BUDGET, BUDGET], seeds=(1,))
    with pytest.raises(ParameterError, match="not low < high"):
        sensitivity.morris(tiny, [Parameter(BUDGET.path, 5, 2)], seeds=(1,))
    with pytest.raises(ParameterError, match=r"^market.nope: "):
        sensitivity.morris(tiny, [Parameter("market.nope", 0, 1)], seeds=(1,))


def _parameter_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "params.toml"
    path.write_text('scenario = "default"\n[parameters]\n' + "\n".join(lines) + "\n")
    return path


def test_aex_sensitivity_writes_json_and_prints_the_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = _parameter_file(
        tmp_path, '"market.entry_per_block" = [0, 5]', '"market.budget_max_major" = [2.0, 5.0]'
    )
    out = tmp_path / "nested" / "result.json"
    argv = ["sensitivity", "--params", str(params), "--ticks", "4", "--trajectories", "2"]
    argv += ["--seeds", "2", "--workers", "0", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "morris sensitivity of welfare (default, 4 ticks, 12 runs" in printed
    assert "consumer_surplus_per_work" in printed
    record = json.loads(out.read_text())
    assert record["method"] == "morris"
    assert record["seeds"] == [7, 8]  # the scenario's seed, then the next
    assert record["evaluations"] == 12
    assert set(record["indices"]) == set(sensitivity.MEASURES)
    rows = record["indices"]["total_welfare_per_work"]
    assert [r["parameter"] for r in rows] == ["market.entry_per_block", "market.budget_max_major"]
    assert rows[0]["mu_star"] == 0.0
    assert len(record["points"]) == len(record["outputs"]["fee_per_work"]) == 6


def test_aex_sensitivity_refuses_a_bad_parameter_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = _parameter_file(tmp_path, '"market.budget_max" = [2.0, 5.0]')
    argv = ["sensitivity", "--params", str(params), "--out", str(tmp_path / "r.json")]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aex sensitivity: error: market.budget_max: market.budget_max is not")
    assert len(err.strip().splitlines()) == 1
    assert main([*argv, "--method", "sobol", "--samples", "6"]) == 2
    assert "power of two" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
