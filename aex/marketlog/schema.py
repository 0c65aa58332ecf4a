"""The market-log DDL: the one definition of every table and column."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import duckdb

__all__ = ["DDL", "TABLES", "code_version", "connect", "create_schema", "next_run_id"]

# Column order matters: writers append Arrow tables positionally in this order.
TABLES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "runs": (
        ("run_id", "BIGINT"),
        ("source", "VARCHAR"),  # 'sim' or 'exchange'
        ("scenario", "VARCHAR"),
        ("seed", "VARCHAR"),  # the master seed or recorded 128-bit entropy, as decimal text
        ("replication", "INTEGER"),
        ("weights_json", "VARCHAR"),  # {"name":..., "weights": {...}} (weights_to_json)
        ("fee_bps", "INTEGER"),
        ("currency", "VARCHAR"),
        ("ticks", "INTEGER"),
        ("tick_ms", "BIGINT"),
        ("log_bids", "VARCHAR"),  # none | winners | all
        ("params_json", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
        ("code_version", "VARCHAR"),  # `git describe` of the code that ran, else the version
    ),
    "providers": (
        ("run_id", "BIGINT"),
        ("provider_id", "BIGINT"),  # an identity; a whitewasher gets several
        ("slot", "INTEGER"),  # the simulated agent behind the identity (NULL on the exchange)
        ("strategy", "VARCHAR"),  # NULL on the exchange
        ("quality", "DOUBLE"),  # true success probability (sim only)
        ("cost_minor", "BIGINT"),  # cost of doing one job (sim only)
        ("confidence", "DOUBLE"),  # stated confidence
        ("certified", "BOOLEAN"),
        ("category", "INTEGER"),
        ("joined_tick", "INTEGER"),
    ),
    "work": (
        ("run_id", "BIGINT"),
        ("work_id", "BIGINT"),
        ("tick", "INTEGER"),
        ("consumer_id", "BIGINT"),
        ("category", "INTEGER"),
        ("budget_min_minor", "BIGINT"),
        ("budget_max_minor", "BIGINT"),
        ("large", "BOOLEAN"),
    ),
    "bids": (
        ("run_id", "BIGINT"),
        ("work_id", "BIGINT"),
        ("bid_id", "BIGINT"),
        ("provider_id", "BIGINT"),
        ("tick", "INTEGER"),
        ("price_minor", "BIGINT"),
        ("submitted_at_ms", "BIGINT"),
        ("price_score", "DOUBLE"),
        ("trust_score", "DOUBLE"),
        ("confidence_score", "DOUBLE"),
        ("sample_score", "DOUBLE"),
        ("sla_score", "DOUBLE"),
        ("certification_score", "DOUBLE"),
        ("total", "DOUBLE"),
        ("rank", "INTEGER"),  # 0 when ranks were not computed (log level 'winners')
        ("is_winner", "BOOLEAN"),
        ("reject_reason", "UTINYINT"),  # 0 = accepted, k = k-th BidRejectReason
    ),
    "awards": (
        ("run_id", "BIGINT"),
        ("work_id", "BIGINT"),
        ("bid_id", "BIGINT"),
        ("provider_id", "BIGINT"),
        ("tick", "INTEGER"),
        ("price_minor", "BIGINT"),
        ("total", "DOUBLE"),
    ),
    "outcomes": (
        ("run_id", "BIGINT"),
        ("work_id", "BIGINT"),
        ("provider_id", "BIGINT"),
        ("tick", "INTEGER"),
        ("success", "BOOLEAN"),
        ("cost_minor", "BIGINT"),  # the provider's cost of the attempt (NULL on the exchange)
    ),
    "settlements": (
        ("run_id", "BIGINT"),
        ("work_id", "BIGINT"),
        ("provider_id", "BIGINT"),
        ("tick", "INTEGER"),
        ("price_minor", "BIGINT"),
        ("fee_minor", "BIGINT"),
        ("payout_minor", "BIGINT"),
    ),
    "reputation": (
        ("run_id", "BIGINT"),
        ("tick", "INTEGER"),  # the snapshot after this tick's outcomes
        ("provider_id", "BIGINT"),
        ("score", "DOUBLE"),
        ("contracts", "BIGINT"),
        ("successes", "BIGINT"),
        ("tier", "TINYINT"),
    ),
}

DDL: Final[str] = "\n".join(
    f"CREATE TABLE IF NOT EXISTS {name} ("
    + ", ".join(f"{column} {kind}" for column, kind in columns)
    + ");"
    for name, columns in TABLES.items()
)


def connect(
    path: str | Path = ":memory:", *, memory_limit: str = "1GB"
) -> duckdb.DuckDBPyConnection:
    """Opens (creating if needed) a market-log database with the schema in place."""
    con = duckdb.connect(str(path))
    con.execute(f"SET memory_limit = '{memory_limit}'")
    create_schema(con)
    return con


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)
    # market logs written before runs.code_version existed gain the column (NULL for them)
    con.execute("ALTER TABLE runs ADD COLUMN IF NOT EXISTS code_version VARCHAR")
    con.execute(WELFARE_DDL)


# Welfare accounting, one row per finished run (written by aex/marketlog/metrics.py
# store_welfare from the run's own rows): consumer surplus (budget − price of settled work),
# provider profit (payouts − costs of every attempt), platform fees, the cost sunk in failed
# work, and their sum (total welfare = surplus + profit + fees), all in minor units.
WELFARE_DDL: Final[str] = (
    "CREATE TABLE IF NOT EXISTS welfare (run_id BIGINT, consumer_surplus_minor BIGINT, "
    "provider_profit_minor BIGINT, platform_fees_minor BIGINT, failed_work_loss_minor BIGINT, "
    "total_welfare_minor BIGINT)"
)


_CODE_VERSION: list[str] = []


def code_version() -> str:
    """The code version recorded with a run: `git describe --always --dirty` of the checkout
    when it is one (cached per process), else the package version."""
    if not _CODE_VERSION:
        import shutil
        import subprocess

        import aex

        version = f"aex {aex.__version__}"
        git = shutil.which("git")
        try:
            if git is None:
                raise OSError("no git")
            described = subprocess.run(  # noqa: S603 - fixed arguments, no input
                [git, "describe", "--always", "--dirty", "--tags"],
                cwd=Path(__file__).resolve().parent,
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
            if described.returncode == 0 and described.stdout.strip():
                version = f"{version} ({described.stdout.strip()})"
        except (OSError, subprocess.SubprocessError):
            pass
        _CODE_VERSION.append(version)
    return _CODE_VERSION[0]


def next_run_id(con: duckdb.DuckDBPyConnection) -> int:
    rows = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM runs").fetchall()
    return int(rows[0][0])
