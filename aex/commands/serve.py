"""`aex serve`: the live exchange under uvicorn, on the embedded SQLite store by default."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="run the live exchange (Litestar under uvicorn)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--data-dir", type=Path, default=Path("./data"))
    parser.add_argument(
        "--weights",
        metavar="FILE_OR_PRESET",
        help="scoring weights: a JSON file written by `aex tune`, or a preset name "
        "(balanced, lowest_price, best_quality); default balanced",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from serve.app import create_app
    from serve.settings import Settings

    env = dict(os.environ)
    if args.weights:
        env["AEX_WEIGHTS"] = args.weights
    settings = Settings.from_env(data_dir=args.data_dir, env=env)
    app = create_app(settings)
    # Open notification streams never end by themselves: give them 2 s on shutdown.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return 0
