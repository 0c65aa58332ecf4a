"""`aex serve`: the live exchange under uvicorn, on the embedded SQLite store by default."""

from __future__ import annotations

import argparse
import os
import shutil
import socket
from pathlib import Path
from typing import Any

from aex.commands._errors import UserError

ENV_FILE_DEFAULT = Path(".env")


def _environment_epilog() -> str | None:
    try:  # the server extra's package; `aex --help` works without it
        from serve.configuration import help_epilog
    except ImportError:
        return None
    return help_epilog()


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run the live exchange (Litestar under uvicorn)",
        description="Run the live exchange: on the embedded SQLite store in --data-dir, or on "
        "PostgreSQL, Redis and NATS as the environment below says (docs/configuration.md).",
        epilog=_environment_epilog(),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="TCP port to listen on")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("./data"),
        help="SQLite database, CA keys, operator key and JWT secret",
    )
    parser.add_argument(
        "--weights",
        metavar="FILE_OR_PRESET",
        help="scoring weights: a JSON file written by `aex tune`, or a preset name "
        "(balanced, lowest_price, best_quality); default balanced",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port (use with AEX_DATABASE_URL and AEX_REDIS_URL)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="settings as KEY=VALUE lines; a variable set in the environment wins over the "
        f"file (default: {ENV_FILE_DEFAULT} when it exists)",
    )
    parser.set_defaults(func=run)


def load_env_file(path: Path | None, environ: dict[str, str] | None = None) -> list[str]:
    """Put a .env file's settings into the environment where it does not set them already;
    returns the names taken from the file (never their values: they may be secrets).

    An explicit `--env-file` that does not exist is the user's mistake; the default `.env`
    is read only when present.
    """
    from dotenv import dotenv_values

    target = os.environ if environ is None else environ
    if path is None:
        path = ENV_FILE_DEFAULT
        if not path.is_file():
            return []
    elif not path.is_file():
        raise UserError(f"--env-file {path}: no such file")
    taken = []
    for name, value in dotenv_values(path).items():
        if value is None or name in target:
            continue
        target[name] = value
        taken.append(name)
    return taken


def _check_arguments(args: argparse.Namespace) -> None:
    # Everything that can be refused is refused before the data directory is touched: a failed
    # `aex serve` leaves no operator.key or jwt.secret behind.
    from serve.settings import load_weights

    load_weights(args.weights)
    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: not a TCP port (1-65535)")
    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: at least 1")
    data_dir: Path = args.data_dir
    existing = next((p for p in (data_dir, *data_dir.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise UserError(f"--data-dir {data_dir}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--data-dir {data_dir}: {existing} is not writable")
    with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as probe:
        # As uvicorn binds: connections of a previous process in TIME_WAIT do not count, a
        # listening socket does (Linux refuses the bind then, SO_REUSEADDR or not).
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((args.host, args.port))
        except OSError as error:
            raise UserError(f"cannot listen on {args.host}:{args.port}: {error.strerror}") from None


def run(args: argparse.Namespace) -> int:
    import uvicorn

    import aex
    from serve.app import create_app
    from serve.settings import OPERATOR_KEY_FILE, Settings
    from serve.telemetry import logs, tracing

    load_env_file(args.env_file)
    _check_arguments(args)
    if args.weights:
        os.environ["AEX_WEIGHTS"] = args.weights
    logs.configure()  # one JSON format for every line (serve/telemetry/logs.py), uvicorn's too
    settings = Settings.from_env(data_dir=args.data_dir)  # validated (and secrets made) once
    proxies = proxy_options(settings.trusted_proxies)
    logs.log_startup(
        version=aex.__version__,
        database_url=settings.database_url,
        data_dir=str(args.data_dir),
        workers=args.workers,
        listen=f"{args.host}:{args.port}",
        redis=settings.redis_url is not None,
        nats=settings.nats_url is not None,
        otlp=bool(os.environ.get(tracing.OTLP_ENDPOINT_ENV)),
        operator_key_from="AEX_OPERATOR_KEY"
        if os.environ.get("AEX_OPERATOR_KEY")
        else str(args.data_dir / OPERATOR_KEY_FILE),
    )
    if args.workers > 1:
        # Each worker process builds its own app from the same environment (serve.app's
        # factory); the kernel spreads connections on the one listening socket across them.
        os.environ["AEX_DATA_DIR"] = str(args.data_dir)
        # One /metrics scrape shows every worker: prometheus_client's multiprocess mode, whose
        # values the workers write to files in this directory (emptied now: a previous run's
        # files would add to this run's counts). Set before the workers start, which import
        # prometheus_client afresh (uvicorn spawns them).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(fresh_metrics_dir(args.data_dir))
        uvicorn.run(
            "serve.app:app_from_env",
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            log_level="warning",
            log_config=logs.logging_config(),
            access_log=False,
            **proxies,
        )
        return 0
    tracing.configure_from_env()  # this process's tracer provider (the workers: app_from_env)
    app = create_app(settings)
    # Open notification streams never end by themselves: give them 2 s on shutdown.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        log_config=logs.logging_config(),
        access_log=False,
        timeout_graceful_shutdown=2,
        **proxies,
    )
    return 0


METRICS_DIR_NAME = "metrics-multiproc"


def fresh_metrics_dir(data_dir: Path) -> Path:
    """D/metrics-multiproc, emptied: the per-run directory of the workers' metric files."""
    directory = data_dir / METRICS_DIR_NAME
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, mode=0o700)
    return directory


def proxy_options(trusted_proxies: tuple[str, ...]) -> dict[str, Any]:
    """uvicorn's forwarded-header options for AEX_TRUSTED_PROXIES (validated in Settings).

    uvicorn believes `X-Forwarded-For` from 127.0.0.1 unless told otherwise (and reads
    FORWARDED_ALLOW_IPS from the environment): with no trusted proxy the rewrite is switched
    off altogether, so the client address is always the TCP peer's.
    """
    if not trusted_proxies:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(trusted_proxies)}
