"""The exchange's environment variables: one table, read by three renderings.

`serve/settings.py` reads these variables (and validates them, once, at startup); this module
only says what each one is. The same table is printed by `aex serve --help`, rendered into
docs/configuration.md and `.env.example` by `python -m tools.render_configuration`, and a test
(tests/serve/test_configuration.py) keeps the table equal to what the code reads, so that a
variable cannot be added without being documented, nor documented without being read.

`D` is the data directory (`aex serve --data-dir`, `/var/lib/aex` in the image).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    default: str  # how the default reads in prose: "generated into D/operator.key", "200"
    meaning: str
    group: str
    example: str = ""  # a value for `.env.example`; empty: commented out with no value
    secret: bool = False  # `.env.example` shows no example value, only where to put one


GROUP_SECRETS = "Secrets"
GROUP_STORAGE = "Storage and scale-out"
GROUP_LIMITS = "Limits and timeouts"
GROUP_MARKET = "Market"
GROUP_WEBHOOKS = "Webhooks and notifications"
GROUP_EDGE = "Edge and observability"
GROUP_CLI = "The command line"
GROUPS = (
    GROUP_SECRETS,
    GROUP_STORAGE,
    GROUP_LIMITS,
    GROUP_MARKET,
    GROUP_WEBHOOKS,
    GROUP_EDGE,
    GROUP_CLI,
)

ENVIRONMENT: tuple[Variable, ...] = (
    Variable(
        "AEX_OPERATOR_KEY",
        "generated into `D/operator.key` (0600)",
        "the operator credential, at least 32 characters",
        GROUP_SECRETS,
        secret=True,
    ),
    Variable(
        "AEX_JWT_SECRET",
        "generated into `D/jwt.secret` (0600)",
        "HS256 secret of `POST /v1/tokens`, at least 32 characters (`JWT_SECRET`, the spec's "
        "name, is read too)",
        GROUP_SECRETS,
        secret=True,
    ),
    Variable(
        "AEX_WEBHOOK_KEY",
        "generated into `D/webhook.key` (0600)",
        "64 hex characters: the AES-256-GCM key that seals providers' webhook signing secrets "
        "in the database; several hosts share one",
        GROUP_SECRETS,
        secret=True,
    ),
    Variable(
        "AEX_DATABASE_URL",
        "SQLite file `D/aex.sqlite3`",
        "`postgresql://user@host:5432/db` selects the PostgreSQL store",
        GROUP_STORAGE,
        example="postgresql://aex@127.0.0.1:5432/aex",
    ),
    Variable(
        "AEX_DATABASE_SCHEMA",
        "`public`",
        "the PostgreSQL schema (created when missing)",
        GROUP_STORAGE,
        example="public",
    ),
    Variable(
        "AEX_DATABASE_POOL_MAX",
        "16",
        "PostgreSQL connections per process (at least 2)",
        GROUP_STORAGE,
        example="16",
    ),
    Variable(
        "AEX_SQLITE_SYNCHRONOUS",
        "`FULL`",
        "`FULL` (an acknowledged write survives power loss), `NORMAL` or `EXTRA`",
        GROUP_STORAGE,
        example="FULL",
    ),
    Variable(
        "AEX_SQLITE_BUSY_TIMEOUT_S",
        "30",
        "how long a write waits for another connection's lock on the SQLite file (a second "
        "process, a backup) before it answers 503 `dependency-unavailable`, in (0, 30]",
        GROUP_STORAGE,
        example="30",
    ),
    Variable(
        "AEX_REDIS_URL",
        "in-process",
        "`redis://host:6379/0` shares the rate limiter and the key cache between processes",
        GROUP_STORAGE,
        example="redis://127.0.0.1:6379/0",
    ),
    Variable(
        "AEX_REDIS_PREFIX", "`aex:`", "prefix of every Redis key", GROUP_STORAGE, example="aex:"
    ),
    Variable(
        "AEX_NATS_URL",
        "no relay",
        "`nats://host:4222` relays the market's outbox to NATS JetStream",
        GROUP_STORAGE,
        example="nats://127.0.0.1:4222",
    ),
    Variable(
        "AEX_NATS_PREFIX",
        "none",
        "prefix of the stream names and subjects",
        GROUP_STORAGE,
    ),
    Variable(
        "AEX_NATS_MAX_AGE_S",
        "2592000 (30 days)",
        "the streams' retention",
        GROUP_STORAGE,
        example="2592000",
    ),
    Variable(
        "AEX_NATS_DUPLICATE_WINDOW_S",
        "120",
        "JetStream's deduplication window (at most the retention)",
        GROUP_STORAGE,
        example="120",
    ),
    Variable(
        "AEX_RATE_LIMIT_PER_MINUTE",
        "the plan's",
        "overrides every plan's per-minute limit",
        GROUP_LIMITS,
    ),
    Variable("AEX_RATE_LIMIT_BURST", "the core's default", "the burst", GROUP_LIMITS),
    Variable(
        "AEX_REQUESTS_PER_DAY",
        "the plan's",
        "overrides every plan's daily quota",
        GROUP_LIMITS,
    ),
    Variable(
        "AEX_ANONYMOUS_RATE_LIMIT_PER_MINUTE",
        "60",
        "routes without a credential, per client address",
        GROUP_LIMITS,
        example="60",
    ),
    Variable(
        "AEX_REQUEST_TIMEOUT_S",
        "30",
        "the request timeout (the spec's 30 s), in (0, 600]; a request is cut at most a"
        " twentieth of it (50 ms to 1 s) after",
        GROUP_LIMITS,
        example="30",
    ),
    Variable(
        "AEX_STREAM_REAUTHORISE_S",
        "30",
        "how often an open notification stream's credential is checked again (a revoked key "
        "or suspended tenant loses its streams at most this late)",
        GROUP_LIMITS,
        example="30",
    ),
    Variable(
        "AEX_BREAKER_OPEN_MS",
        "10000",
        "how long a tripped circuit breaker (PostgreSQL, Redis, NATS, a webhook host) stays "
        "open before its one probe; the spec's 10 s, in [100, 600000]",
        GROUP_LIMITS,
        example="10000",
    ),
    Variable(
        "AEX_WEIGHTS",
        "`balanced`",
        "a preset name (balanced, lowest_price, best_quality) or a weights JSON file written "
        "by `aex tune` (`aex serve --weights` sets it); the file may add the optional rules "
        "keys `confidence_calibration`, `reputation` and `payment_rule` (`first_score`, the "
        'spec and the default, or `second_score`: docs/scoring.md "Payment rule")',
        GROUP_MARKET,
        example="balanced",
    ),
    Variable(
        "AEX_SCORING_ENGINE",
        "compiled",
        "`compiled`: bids are scored by the core's numba kernel, warmed on a thread at start "
        "(the numpy engine meanwhile); `numpy`: by the core's numpy engine only, numba never "
        "loaded (a process that starts often, such as a test server). Both score identically",
        GROUP_MARKET,
        example="compiled",
    ),
    Variable(
        "AEX_WINDOW_POLL_MS",
        "200",
        "how often each process looks for due bid windows (a window closes at most this late)",
        GROUP_MARKET,
        example="200",
    ),
    Variable(
        "AEX_WEBHOOK_BACKOFF_MS",
        "1000",
        "the first webhook retry's delay, doubling after",
        GROUP_WEBHOOKS,
        example="1000",
    ),
    Variable(
        "AEX_WEBHOOK_LEASE_MS",
        "60000",
        "how long a claimed delivery may stand still before another process takes it over",
        GROUP_WEBHOOKS,
        example="60000",
    ),
    Variable(
        "AEX_WEBHOOK_ALLOW_PRIVATE",
        "`0`",
        "`1` admits webhook endpoints on loopback, link-local and private addresses (local "
        "development); metadata, multicast and reserved addresses stay refused",
        GROUP_WEBHOOKS,
        example="0",
    ),
    Variable(
        "AEX_WEBHOOK_HOSTS",
        "none",
        "a static host table for webhook delivery, `name=addr[|addr],...` (like curl "
        "`--resolve`), consulted before DNS",
        GROUP_WEBHOOKS,
    ),
    Variable(
        "AEX_WEBHOOK_DNS",
        "`system`",
        "`off`: only `AEX_WEBHOOK_HOSTS` and IP literals resolve (no DNS query at all)",
        GROUP_WEBHOOKS,
        example="system",
    ),
    Variable(
        "AEX_CORS_ORIGINS",
        "none",
        "comma-separated allowed origins",
        GROUP_EDGE,
    ),
    Variable(
        "AEX_TRUSTED_PROXIES",
        "none",
        "comma-separated addresses or CIDR networks whose `X-Forwarded-For` is believed (`*` "
        "and host names are refused); with none, forwarded headers are ignored whatever "
        "uvicorn's `FORWARDED_ALLOW_IPS` says",
        GROUP_EDGE,
    ),
    Variable(
        "AEX_METRICS_PUBLIC",
        "unset",
        "`1` serves `/metrics` without a credential; by default it needs the operator key "
        "(`X-API-Key` or `Authorization: Bearer`, which Prometheus's `authorization` scrape "
        "setting sends)",
        GROUP_EDGE,
    ),
    Variable(
        "AEX_DEBUG",
        "unset",
        "`1`: the `aex` command shows a traceback instead of its one-line error",
        GROUP_CLI,
    ),
)

# Read by the code but not a setting of anyone's: `aex serve --workers` hands its data
# directory to its own worker processes through it.
INTERNAL = frozenset({"AEX_DATA_DIR"})

assert len({v.name for v in ENVIRONMENT}) == len(ENVIRONMENT), "a variable is listed twice"
assert {v.group for v in ENVIRONMENT} <= set(GROUPS)


def help_epilog() -> str:
    """The table for `aex serve --help`: name, default, meaning, one variable per entry."""
    lines = ["environment (also read from a .env file; the real environment wins):"]
    for variable in ENVIRONMENT:
        default = variable.default.replace("`", "")
        meaning = variable.meaning.replace("`", "")
        lines.append(f"  {variable.name}  (default: {default})")
        lines += textwrap.wrap(meaning, 88, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def markdown() -> str:
    """docs/configuration.md."""
    out = [
        "# Configuration",
        "",
        "<!-- Generated by `python -m tools.render_configuration` from serve/configuration.py;"
        " do not edit. -->",
        "",
        "`aex serve` reads these environment variables once at startup (`serve/settings.py`)"
        " and refuses a bad value by name before it serves anything or writes into its data"
        " directory. Every one is optional. They may also come from a `.env` file in the"
        " working directory (`aex serve --env-file PATH` names another; `.env.example` lists"
        " them all): a variable set in the real environment wins over the file. `D` is the"
        " data directory (`--data-dir`, `/var/lib/aex` in the image). `aex serve --help`"
        " prints the same table.",
        "",
    ]
    for group in GROUPS:
        rows = [v for v in ENVIRONMENT if v.group == group]
        if not rows:
            continue
        out += [f"## {group}", "", "| variable | default | what |", "| --- | --- | --- |"]
        out += [
            f"| `{v.name}` | {v.default} | {v.meaning.replace('|', chr(92) + '|')} |" for v in rows
        ]
        out.append("")
    out += [
        "Not the exchange's own, but read by what it runs on: `PGPASSWORD` (libpq, when the URL"
        " has no password). uvicorn's `FORWARDED_ALLOW_IPS` has no effect: `aex serve` passes"
        " its own setting from `AEX_TRUSTED_PROXIES`. Several processes on PostgreSQL need"
        " `AEX_OPERATOR_KEY` and `AEX_JWT_SECRET` set (or a shared data directory): processes"
        " that generated their own would disagree.",
        "",
    ]
    return "\n".join(out)


def env_example() -> str:
    """`.env.example`: every variable, commented out, with an example where one is harmless."""
    out = [
        "# AEX settings for `aex serve` (copy to .env; the real environment wins over it).",
        "# Generated by `python -m tools.render_configuration` from serve/configuration.py.",
        "# Every variable is optional: uncomment what you set. docs/configuration.md explains.",
    ]
    for group in GROUPS:
        rows = [v for v in ENVIRONMENT if v.group == group]
        if not rows:
            continue
        out += ["", f"# --- {group}"]
        for v in rows:
            default = v.default.replace("`", "")
            out.append(f"# {v.name}: {v.meaning.replace('`', '')} (default: {default})")
            if v.secret:
                out.append(f"# {v.name}=<a secret of your own; never commit it>")
            else:
                out.append(f"# {v.name}={v.example}")
    return "\n".join(out) + "\n"
