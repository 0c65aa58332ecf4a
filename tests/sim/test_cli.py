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
