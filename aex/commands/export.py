"""`aex export --data-dir D --to market.duckdb`: the live exchange's market log, appended as
one run (source 'exchange') in the simulator's schema, for `aex backtest` and the notebooks.

With AEX_DATABASE_URL (and AEX_DATABASE_SCHEMA) set, as for `aex serve`, it reads the
scale-out PostgreSQL database instead of the SQLite file in D."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "export", help="export the exchange's market log to a DuckDB market-log file"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path("./data"), help="the exchange's data directory"
    )
    parser.add_argument("--to", type=Path, required=True, help="the DuckDB file (appended to)")
    parser.add_argument(
        "--weights", help="the weights the exchange ran with (file or preset; default balanced)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    import time

    from serve.market.export import export_from_postgres, export_market_log
    from serve.settings import load_weights
    from serve.stores.market_db import DATABASE_FILE

    now_ms = time.time_ns() // 1_000_000
    weights = load_weights(args.weights)
    url = os.environ.get("AEX_DATABASE_URL")
    if url:
        schema = os.environ.get("AEX_DATABASE_SCHEMA") or "public"
        written = export_from_postgres(url, schema, args.to, now_ms=now_ms, weights=weights)
    elif not (args.data_dir / DATABASE_FILE).exists():
        print(f"error: no exchange database in {args.data_dir}")
        return 2
    else:
        written = export_market_log(args.data_dir, args.to, now_ms=now_ms, weights=weights)
    rows = ", ".join(f"{table} {count}" for table, count in written.items())
    print(f"exported to {args.to}: {rows}")
    return 0
