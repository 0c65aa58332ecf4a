"""Welfare accounting per run in the market log, and `aex compare` of two logs."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from aex.cli import main


def _sim(out: Path, weights: Path | None = None) -> None:
    argv = ["sim", "reference_reverse_auction", "--ticks", "4", "--seed", "3"]
    argv += ["--replications", "2", "--out", str(out), "--no-progress"]
    if weights is not None:
        argv += ["--weights", str(weights)]
    assert main(argv) == 0


def test_every_run_stores_its_welfare_and_the_parts_add_up(tmp_path: Path) -> None:
    out = tmp_path / "a.duckdb"
    _sim(out)
    con = duckdb.connect(str(out))
    rows = con.execute(
        "SELECT consumer_surplus_minor, provider_profit_minor, platform_fees_minor,"
        " failed_work_loss_minor, total_welfare_minor FROM welfare ORDER BY run_id"
    ).fetchall()
    fees = con.execute("SELECT sum(fee_minor) FROM settlements GROUP BY run_id ORDER BY run_id")
    assert len(rows) == 2
    settled = fees.fetchall()
    for (surplus, profit, fee, lost, total), (settled_fee,) in zip(rows, settled, strict=True):
        assert total == surplus + profit + fee
        assert fee == settled_fee
        assert lost >= 0
    versions = con.execute("SELECT code_version, params_json FROM runs").fetchall()
    assert all(v and p for v, p in versions)


def test_aex_compare_pairs_runs_and_identical_logs_differ_by_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    _sim(a)
    _sim(b)
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "2 paired runs" in out
    assert "total_welfare" in out
    assert main(["compare", str(a), str(tmp_path / "missing.duckdb")]) == 2
