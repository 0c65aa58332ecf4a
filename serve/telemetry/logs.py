"""One JSON log format for every line the server writes (docs/operations.md, "Tracing and logs").

Each line is one JSON object: `ts` (RFC 3339, UTC, milliseconds: 2026-12-02T18:00:00.123Z),
`level`, `logger`, `msg`, and within a request its `request_id` (a context variable set by
serve/gateway/edge.py's RequestIdMiddleware) and the `trace_id` / `span_id` of the current
span (serve/telemetry/tracing.py). The access lines of JsonLogMiddleware carry the same fields.

`logging_config()` is the dictConfig given to uvicorn (and applied by `aex serve` before it
starts): one stderr handler on the root logger, uvicorn's own loggers without handlers of their
own and propagating to it, so every line goes through one handler once. Secrets are never
logged: the startup line names the backend's host, never a DSN's password or a key.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

from serve.telemetry import tracing

REQUEST_ID: ContextVar[str | None] = ContextVar("aex_request_id", default=None)
ROOT_LEVEL = "WARNING"  # libraries (httpx logs every request at INFO) say only what matters
AEX_LEVEL = "INFO"  # the exchange's own loggers (aex.*): the startup line, warnings, errors
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def rfc3339(epoch_s: float) -> str:
    """2026-12-02T18:00:00.123Z: UTC, milliseconds."""
    whole, millis = divmod(round(epoch_s * 1000), 1000)
    return f"{_second(whole)}.{millis:03d}Z"


@functools.lru_cache(maxsize=4)
def _second(whole_s: int) -> str:
    # Every access line asks for it: one strftime per second, not per line.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole_s))


def context_fields() -> dict[str, str]:
    """The request id and the trace and span ids current here, those that are set."""
    fields: dict[str, str] = {}
    request_id = REQUEST_ID.get()
    if request_id is not None:
        fields["request_id"] = request_id
    ids = tracing.trace_ids()
    if ids is not None:
        fields["trace_id"], fields["span_id"] = ids
    return fields


class JsonFormatter(logging.Formatter):
    """A record as one JSON line; `extra={"fields": {...}}` adds fields of its own."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line |= context_fields()
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line |= {key: value for key, value in fields.items() if key not in line}
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, default=str, separators=(",", ":"))


def logging_config() -> dict[str, Any]:
    """For `logging.config.dictConfig` and uvicorn's `log_config` (also in worker processes)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "serve.telemetry.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": ROOT_LEVEL},
        "loggers": {
            "aex": {"level": AEX_LEVEL, "handlers": [], "propagate": True},
            **{
                name: {"handlers": [], "propagate": True, "level": ROOT_LEVEL}
                for name in UVICORN_LOGGERS
            },
        },
    }


def configure() -> None:
    import logging.config

    logging.config.dictConfig(logging_config())


def database_shown(database_url: str | None, data_dir: str) -> dict[str, str]:
    """The backend as the startup line shows it: the SQLite data directory, or the PostgreSQL
    host, port and database (never the user's password, nor the query's options)."""
    if database_url is None:
        return {"backend": "sqlite", "data_dir": data_dir}
    parts = urlsplit(database_url)
    host = parts.hostname or "localhost"
    shown = f"{host}:{parts.port}" if parts.port else host
    database = parts.path.lstrip("/")
    return {"backend": "postgres", "database": f"{shown}/{database}" if database else shown}


def log_startup(
    *,
    version: str,
    database_url: str | None,
    data_dir: str,
    workers: int,
    listen: str,
    redis: bool,
    nats: bool,
    otlp: bool,
    operator_key_from: str = "",
) -> None:
    """The one startup line: what runs, its URL, where the operator key is (never the key),
    and which adapters are on."""
    host, _, port = listen.rpartition(":")
    shown_host = f"[{host}]" if ":" in host else host
    fields = {
        "version": version,
        "url": f"http://{shown_host}:{port}",
        **database_shown(database_url, data_dir),
        "operator_key": operator_key_from,
        "workers": workers,
        "listen": listen,
        "adapters": {"redis": redis, "nats": nats, "otlp": otlp},
    }
    logging.getLogger("aex.serve").info("aex serve starting", extra={"fields": fields})
