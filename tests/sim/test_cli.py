"""`aex sim` runs a scenario into DuckDB and prints its throughput, success rate and fee."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from aex.cli import main


def test_aex_sim_writes_the_market_log_and_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ref.duckdb"
    code = main(
        [
            "sim",
            "reference_reverse_auction",
            "--ticks",
            "8",
            "--out",
            str(out),
            "--no-progress",
            "--seed",
            "3",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    for phrase in ("auctions cleared/s", "success rate", "fee per posted item"):
        assert phrase in printed
    con = duckdb.connect(str(out))
    assert con.execute("SELECT count(*), min(seed) FROM runs").fetchall() == [(1, "3")]
    assert con.execute("SELECT count(*) FROM work").fetchall() == [(800,)]


def test_aex_sim_reports_a_bad_scenario_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("ticks = -1\n")
    assert main(["sim", str(bad), "--out", str(tmp_path / "x.duckdb"), "--no-progress"]) == 2
    assert "ticks" in capsys.readouterr().err


def test_aex_sim_without_a_seed_records_fresh_entropy(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text("ticks = 2\n[market]\nwork_per_tick = 5\n[[providers]]\ncount = 20\n")
    out = tmp_path / "e.duckdb"
    assert main(["sim", str(scenario), "--out", str(out), "--no-progress"]) == 0
    (seed,) = duckdb.connect(str(out)).execute("SELECT seed FROM runs").fetchall()[0]
    assert int(seed) > 2**64  # 128-bit OS entropy, recorded as text


def test_a_run_in_which_nobody_bids_prints_its_summary_with_n_a(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The seed that CI drew for the test above: 10 work items, 0 bids, so no mean price and no
    # honest win share (None). The summary was a TypeError ("internal error") on such runs.
    scenario = tmp_path / "tiny.toml"
    scenario.write_text("ticks = 2\n[market]\nwork_per_tick = 5\n[[providers]]\ncount = 20\n")
    seed = "119433563223088830119694328370417967153"
    out = tmp_path / "none.duckdb"
    assert main(["sim", str(scenario), "--seed", seed, "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "0 bids" in printed
    assert "price_mean_minor        n/a" in printed


def test_every_run_records_its_code_version(tmp_path: Path) -> None:
    out = tmp_path / "v.duckdb"
    assert main(["sim", "default", "--out", str(out), "--ticks", "3", "--no-progress"]) == 0
    (version,) = duckdb.connect(str(out)).execute("SELECT code_version FROM runs").fetchall()[0]
    assert version.startswith("aex ")


def test_aex_sim_checks_that_honest_providers_break_even_over_seeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "be.duckdb"
    args = ["sim", "default", "--out", str(out), "--ticks", "40", "--no-progress"]
    assert main([*args, "--replications", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("honest profit/provider") == 2  # per run, over its providers
    assert "honest profit per provider over 2 seeds" in printed  # over seeds
    assert "break even: yes" in printed


def _tune(out: Path, *extra: str) -> int:
    args = ["tune", "default", "--ticks", "2", "--seeds", "1", "--check-seeds", "2"]
    return main([*args, "--maxiter", "1", "--popsize", "1", "--serial", "--out", str(out), *extra])


def test_aex_tune_shows_its_progress_on_stderr_and_no_bar_with_no_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _tune(tmp_path / "a.json") == 0
    shown = capsys.readouterr().err
    assert "search" in shown  # the candidates' bar (tqdm writes even when not a TTY)
    # Its total, popsize 1 × 6 weights × (maxiter 1 + 1), as the bar's first render shows it
    # (a later count is shown only if tqdm's 0.1 s refresh happened to fall after it: the bar
    # is cleared on close, and a loaded machine once skipped the refresh that showed 12/12).
    assert "0/12 " in shown
    assert "check" in shown
    assert _tune(tmp_path / "b.json", "--no-progress") == 0
    assert capsys.readouterr().err == ""


def test_aex_backtest_shows_its_progress_and_no_bar_with_no_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bt.duckdb"
    run = ["sim", "default", "--ticks", "3", "--log-bids", "all", "--out", str(out)]
    assert main([*run, "--no-progress", "--seed", "5"]) == 0
    capsys.readouterr()
    assert main(["backtest", str(out)]) == 0
    assert "re-score" in capsys.readouterr().err
    assert main(["backtest", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    assert "awards_changed_share" in printed.out
