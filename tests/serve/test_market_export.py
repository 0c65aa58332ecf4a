"""`aex export`: the live market as one run of the simulator's market log (DuckDB)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import httpx

from tests.serve.market_helpers import bid, close_now, complete, consumer, provider, submit_work
from tests.serve.server import Backend, Server


def test_export_writes_one_exchange_run_that_backtest_reads(
    server: Server, backend: Backend, client: httpx.Client, tmp_path: Path
) -> None:
    acme, winner, loser = consumer(client), provider(client), provider(client)
    work = submit_work(client, acme)
    bid(client, winner, work["work_id"], 100)
    bid(client, loser, work["work_id"], 190, confidence=0.3)
    complete(client, winner, close_now(client, work["work_id"])["contract_id"])
    target = tmp_path / "market.duckdb"
    command = [sys.executable, "-m", "aex.cli", "export", "--data-dir", str(server.data_dir)]
    exported = subprocess.run(
        [*command, "--to", str(target)],
        env={**os.environ, **backend.env},  # the server's database: its SQLite file or schema
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    con = duckdb.connect(str(target), read_only=True)
    assert con.execute("SELECT source, fee_bps, log_bids FROM runs").fetchall() == [
        ("exchange", 1500, "all")
    ]
    work_int = con.execute(
        "SELECT int_id FROM exchange_ids WHERE kind = 'work' AND exchange_id = ?",
        [work["work_id"]],
    ).fetchall()[0][0]
    bids = con.execute(
        "SELECT price_minor, rank, is_winner, reject_reason FROM bids WHERE work_id = ?"
        " ORDER BY rank",
        [work_int],
    ).fetchall()
    assert bids == [(10_000, 1, True, 0), (19_000, 2, False, 0)]
    settlement = con.execute(
        "SELECT price_minor, fee_minor, payout_minor FROM settlements WHERE work_id = ?",
        [work_int],
    ).fetchall()
    assert settlement == [(10_000, 1_500, 8_500)]
    assert (
        con.execute("SELECT count(*) FROM awards WHERE work_id = ?", [work_int]).fetchall()[0][0]
        == 1
    )
    con.close()
    backtest = subprocess.run(
        [sys.executable, "-m", "aex.cli", "backtest", str(target), "--preset", "lowest_price"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert backtest.returncode == 0, backtest.stderr
