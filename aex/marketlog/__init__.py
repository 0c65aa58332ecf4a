"""The market log: ONE DuckDB schema for the simulator's runs and the live exchange's export.

Tables (DDL below, and only here): runs, providers, work, bids (six score components, total,
rank, winner flag, reject reason code), awards, outcomes, settlements (price, fee and payout in
minor units), reputation (per-tick snapshots of the providers whose reputation changed) and
welfare (one row per finished simulator run: surplus, profit, fees, loss from failed work).
Every row carries `run_id`; the live exchange's `aex export` writes one run with source
'exchange'. Writers append Arrow batches, never row by row (see writer.py); summary metrics are
SQL over these tables (see metrics.py).
"""

from aex.marketlog.metrics import run_summary, store_welfare, summary_frame
from aex.marketlog.schema import DDL, TABLES, code_version, connect, create_schema, next_run_id
from aex.marketlog.writer import MarketLogWriter

__all__ = [
    "DDL",
    "TABLES",
    "MarketLogWriter",
    "code_version",
    "connect",
    "create_schema",
    "next_run_id",
    "run_summary",
    "store_welfare",
    "summary_frame",
]
