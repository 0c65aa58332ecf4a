"""`aex dashboard --log RUN.duckdb`: the market dashboard over a market-log file (a simulation
run or an `aex export`), served locally; the live exchange serves its own at /dashboard."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aex.commands._errors import UserError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dashboard", help="the market dashboard over a market-log DuckDB file"
    )
    parser.add_argument("--log", type=Path, required=True, help="the DuckDB market log")
    parser.add_argument("--run", type=int, default=None, help="the run id (default: the first)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8090, help="TCP port to listen on")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from serve.dashboard.log_app import log_app

    if not args.log.exists():
        raise UserError(f"no market log at {args.log}")
    try:
        app = log_app(args.log, args.run)
    except ValueError as error:
        raise UserError(str(error)) from None
    print(f"dashboard of {args.log} on http://{args.host}:{args.port}/dashboard/operator")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
