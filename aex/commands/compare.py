"""`aex compare RUN_A.duckdb RUN_B.duckdb`: paired welfare differences (B − A) with 95% CIs.

Runs are paired by (scenario, seed, replication): the same market under two settings (e.g.
weights) with common random numbers. Each welfare measure's difference B − A is averaged over
the pairs with a Student-t interval.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

MEASURES = (
    "consumer_surplus_minor",
    "provider_profit_minor",
    "platform_fees_minor",
    "failed_work_loss_minor",
    "total_welfare_minor",
)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "compare", help="paired welfare differences of two market logs (95%% CI)"
    )
    parser.add_argument("run_a", type=Path, help="the first market log (DuckDB)")
    parser.add_argument("run_b", type=Path, help="the second market log (DuckDB)")
    parser.set_defaults(func=run)


def _welfare(path: Path) -> dict[tuple[str, str, int], dict[str, float]]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        names = ", ".join(f"w.{m}" for m in MEASURES)
        rows = con.execute(
            f"SELECT r.scenario, r.seed, r.replication, {names} "  # noqa: S608 - fixed names
            "FROM runs r JOIN welfare w USING (run_id) ORDER BY r.run_id"
        ).fetchall()
    finally:
        con.close()
    return {
        (str(r[0]), str(r[1]), int(r[2])): dict(zip(MEASURES, map(float, r[3:]), strict=True))
        for r in rows
    }


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from aex.marketlog.metrics import mean_interval

    for path in (args.run_a, args.run_b):
        if not path.exists():
            print(f"aex compare: {path}: no such file", file=sys.stderr)
            return 2
    a, b = _welfare(args.run_a), _welfare(args.run_b)
    pairs = sorted(set(a) & set(b))
    if not pairs:
        print(
            "aex compare: no runs to pair (same scenario, seed and replication, with welfare)",
            file=sys.stderr,
        )
        return 2
    rows = []
    for measure in MEASURES:
        diffs = [(b[k][measure] - a[k][measure]) / 100 for k in pairs]
        mean, low, high = mean_interval(diffs)
        rows.append(
            {
                "measure": measure.removesuffix("_minor"),
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
            }
        )
    print(f"B − A in major units per run, {len(pairs)} paired runs, 95% Student-t CI")
    with pl.Config(tbl_rows=-1, tbl_hide_dataframe_shape=True, float_precision=3):
        print(pl.DataFrame(rows))
    return 0
