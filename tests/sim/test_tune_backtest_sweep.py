"""Tuning, backtesting and sweeps on tiny runs; the Dask executor on a local cluster."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from aex.cli import main
from aex.sim import _core
from aex.sim import backtest as backtest_module
from aex.sim.backtest import backtest
from aex.sim.runner import simulate
from aex.sim.scenario import ScenarioParams
from aex.sim.sweep import DaskExecutor, SerialExecutor, SweepTask, evaluate, sweep
from aex.sim.tune import estimate, tune, weights_from_vector


@pytest.fixture
def tiny(mixed: ScenarioParams) -> ScenarioParams:
    return dataclasses.replace(mixed, ticks=6)


def test_weights_from_any_vector_lie_on_the_simplex() -> None:
    for vector in ([0, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6], [0.5, 0, 0, 0, 0, 0]):
        weights = weights_from_vector(vector)
        assert sum(dataclasses.astuple(weights)) == pytest.approx(1.0, abs=1e-12)


def test_confidence_interval_brackets_the_mean() -> None:
    est = estimate([1.0, 2.0, 3.0, 4.0])
    assert est.low < est.mean == 2.5 < est.high


def test_a_tune_run_records_its_convergence_one_best_per_generation(tiny: ScenarioParams) -> None:
    result = tune(
        [dataclasses.replace(tiny, ticks=3)], seeds=[1], check_seeds=[2, 3], maxiter=3, popsize=1
    )
    assert len(result.history) == 3
    assert list(result.history) == sorted(result.history)  # the best never falls


def test_a_tiny_tune_run_returns_simplex_weights_with_intervals(tiny: ScenarioParams) -> None:
    result = tune([tiny], seeds=[1], check_seeds=[2, 3], maxiter=1, popsize=1)
    assert sum(dataclasses.astuple(result.weights)) == pytest.approx(1.0, abs=1e-9)
    assert result.difference.n == 2
    assert result.tuned.low <= result.tuned.mean <= result.tuned.high


def test_aex_tune_writes_weights_that_load_back(tmp_path: Path, mixed: ScenarioParams) -> None:
    out = tmp_path / "tuned.json"
    code = main(
        [
            "tune",
            "default",
            "--ticks",
            "4",
            "--seeds",
            "1",
            "--check-seeds",
            "2",
            "--maxiter",
            "1",
            "--popsize",
            "1",
            "--serial",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    document = json.loads(out.read_text())
    assert document["name"] == "tuned"
    assert isinstance(_core.weights_from_json(document), _core.Weights)


def test_backtest_under_the_run_weights_changes_nothing(tiny: ScenarioParams) -> None:
    _, con = simulate(tiny)
    result = backtest(con, 1, tiny.weights)
    assert result.summary["awards_changed_share"] == 0.0
    assert result.summary["auctions"] > 0


def test_backtest_under_other_weights_reports_the_changes(tiny: ScenarioParams) -> None:
    _, con = simulate(tiny)
    result = backtest(con, 1, _core.PRESETS["lowest_price"])
    assert 0.0 < result.summary["awards_changed_share"] <= 1.0
    assert result.summary["price_mean_after_minor"] <= result.summary["price_mean_before_minor"]


def test_backtest_under_the_runs_own_second_score_rule_changes_neither_awards_nor_prices(
    tiny: ScenarioParams,
) -> None:
    # "before" is the recorded contract price, "after" the core's: they agree exactly
    second = dataclasses.replace(
        tiny, scoring=dataclasses.replace(tiny.scoring, payment_rule="second_score")
    )
    _, con = simulate(second)
    result = backtest(con, 1, second.weights, payment_rule=_core.PaymentRule.SECOND_SCORE)
    assert result.summary["awards_changed_share"] == 0.0
    prices = result.auctions.select("price_before", "price_after")
    assert prices["price_before"].to_list() == prices["price_after"].to_list()
    first = backtest(con, 1, second.weights)  # the same awards, paid their bids
    assert first.summary["price_mean_after_minor"] < result.summary["price_mean_before_minor"]


def test_backtest_in_small_chunks_is_the_backtest_in_one(
    tiny: ScenarioParams, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, con = simulate(tiny)
    whole = backtest(con, 1, _core.PRESETS["lowest_price"])
    reported: list[int] = []
    monkeypatch.setattr(backtest_module, "RESCORE_CHUNK_BIDS", 7)
    chunked = backtest(con, 1, _core.PRESETS["lowest_price"], progress=reported.append)
    assert chunked.summary == whole.summary
    assert chunked.auctions.equals(whole.auctions)
    assert len(reported) > 1
    assert sum(reported) == backtest_module.recorded_bids(con, 1)


def test_backtest_needs_every_bid_logged(tiny: ScenarioParams) -> None:
    lean = dataclasses.replace(tiny, log=dataclasses.replace(tiny.log, bids="winners"))
    _, con = simulate(lean)
    with pytest.raises(ValueError, match="'all'"):
        backtest(con, 1, tiny.weights)


def test_sweep_rows_match_single_evaluations(tiny: ScenarioParams) -> None:
    tasks = [SweepTask(tiny, replication=r, label=f"r{r}") for r in range(2)]
    frame = sweep(tasks, SerialExecutor())
    assert frame["label"].to_list() == ["r0", "r1"]
    assert sweep(tasks, SerialExecutor(), progress=True).equals(frame)
    assert (
        frame.row(1, named=True)["consumer_surplus_minor"]
        == evaluate(tasks[1])["consumer_surplus_minor"]
    )


def test_dask_executor_gives_the_same_sweep_as_in_process(tiny: ScenarioParams) -> None:
    distributed = pytest.importorskip("distributed")
    tasks = [SweepTask(tiny, replication=r) for r in range(2)]
    with (
        distributed.LocalCluster(
            n_workers=1, processes=False, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = sweep(tasks, DaskExecutor(client))
    assert on_dask.equals(sweep(tasks, SerialExecutor()))


DEFAULT_TOML = Path(__file__).resolve().parents[2] / "scenarios" / "default.toml"


def calibrated_default(tmp_path: Path) -> Path:
    """scenarios/default.toml with confidence calibration on (k = 3), as a file."""
    calibrated = tmp_path / "calibrated.toml"
    calibrated.write_text(
        DEFAULT_TOML.read_text().replace(
            "[scoring]\n",
            "[scoring]\ncalibration = { evidence_contracts = 3.0, prior_alpha = 1.0,"
            " prior_beta = 1.0 }\n",
        )
    )
    return calibrated


def test_aex_tune_writes_the_rules_it_tuned_under(tmp_path: Path) -> None:
    # a calibrated scenario: the tuned weights were found under calibration, so the file that
    # `aex serve --weights` loads must run calibration too (a bare weights file would not)
    calibrated = calibrated_default(tmp_path)
    out = tmp_path / "tuned.json"
    argv = ["tune", str(calibrated), "--ticks", "3", "--seeds", "1", "--check-seeds", "2"]
    argv += ["--maxiter", "1", "--popsize", "1", "--serial", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    rules = _core.rules_from_json(json.loads(out.read_text()))
    assert isinstance(rules, _core.ExchangeRules)
    assert rules.calibration is not None
    assert rules.calibration.evidence_contracts == 3.0


def test_aex_tune_warns_only_when_the_scenarios_other_rules_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # scenarios that differ only in their weights run the same rules (the search replaces the
    # weights); a different calibration is a different rule set, and the file takes the first
    cheap = tmp_path / "cheap.toml"
    cheap.write_text(
        DEFAULT_TOML.read_text().replace('preset = "balanced"', 'preset = "lowest_price"')
    )
    calibrated = calibrated_default(tmp_path)
    tiny = ["--ticks", "2", "--seeds", "1", "--check-seeds", "2", "--maxiter", "1"]
    tiny += ["--popsize", "1", "--serial", "--no-progress", "--out", str(tmp_path / "t.json")]
    assert main(["tune", "default", str(cheap), *tiny]) == 0
    assert "different rules" not in capsys.readouterr().err
    assert main(["tune", "default", str(calibrated), *tiny]) == 0
    assert "different rules" in capsys.readouterr().err
