"""Settings for the live exchange, validated once at startup, never per request.

Every variable it reads is listed, with its default and meaning, in one table:
`serve/configuration.py` (printed by `aex serve --help`, rendered into docs/configuration.md
and `.env.example`; tests/serve/test_configuration.py keeps the table and this reader equal).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from aex.core import (
    DEFAULT_BREAKER_POLICY,
    DEFAULT_BURST_REQUESTS,
    PRESETS,
    BreakerPolicy,
    Rejected,
    rules_from_json,
)
from aex.core.scoring import ENGINES
from serve.market.evaluation import DEFAULT_WEIGHTS, NamedWeights
from serve.notifications.endpoints import (
    EndpointPolicy,
    StaticResolver,
    SystemResolver,
    parse_hosts_table,
)
from serve.notifications.events import STREAM_REAUTHORISE_S_DEFAULT
from serve.notifications.nats_relay import DUPLICATE_WINDOW_S_DEFAULT, STREAM_MAX_AGE_S_DEFAULT
from serve.notifications.webhooks import WEBHOOK_BACKOFF_MS_DEFAULT, WEBHOOK_LEASE_MS_DEFAULT
from serve.secret_box import SECRET_BOX_KEY_BYTES, load_key, parse_key
from serve.stores.market_db import DATABASE_FILE
from serve.stores.sqlite import BUSY_TIMEOUT_S

# How often each process's closer looks for due bid windows: a window closes at most that late.
WINDOW_POLL_MS_DEFAULT = 200

OPERATOR_KEY_FILE = "operator.key"
JWT_SECRET_FILE = "jwt.secret"  # noqa: S105 - a file name, not a secret
WEBHOOK_KEY_FILE = "webhook.key"
# Spec "Production Middleware Stack": "Timeout → 30s max request duration".
REQUEST_TIMEOUT_S_DEFAULT = 30.0
ANONYMOUS_REQUESTS_PER_MINUTE_DEFAULT = 60
# Spec "Authentication in Production": "Validation: Gateway → Identity Service (5-min cache)".
KEY_CACHE_TTL_S = 300.0
DATABASE_POOL_MAX_DEFAULT = 16


# Stand-ins for secrets that from_env would generate, while it validates the rest first.
_STAND_IN_SECRET = "stand-in-for-a-generated-secret-never-served"  # noqa: S105
_STAND_IN_KEY = bytes(SECRET_BOX_KEY_BYTES)


class ImproperlyConfiguredError(RuntimeError):
    """A setting is invalid: raised at startup, never per request."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    operator_key: str = field(repr=False)
    jwt_secret: str = field(repr=False)
    webhook_key: bytes = field(default=b"", repr=False)
    cors_origins: tuple[str, ...] = ()
    rate_limit_per_minute: int | None = None
    requests_per_day: int | None = None
    rate_limit_burst: int = DEFAULT_BURST_REQUESTS
    anonymous_requests_per_minute: int = ANONYMOUS_REQUESTS_PER_MINUTE_DEFAULT
    request_timeout_s: float = REQUEST_TIMEOUT_S_DEFAULT
    sqlite_synchronous: str = "FULL"
    sqlite_busy_timeout_s: float = BUSY_TIMEOUT_S
    key_cache_ttl_s: float = KEY_CACHE_TTL_S
    weights: NamedWeights = DEFAULT_WEIGHTS
    database_url: str | None = None
    database_schema: str = "public"
    database_pool_max: int = DATABASE_POOL_MAX_DEFAULT
    redis_url: str | None = None
    redis_prefix: str = "aex:"
    nats_url: str | None = None
    nats_prefix: str = ""
    nats_max_age_s: float = STREAM_MAX_AGE_S_DEFAULT
    nats_duplicate_window_s: float = DUPLICATE_WINDOW_S_DEFAULT
    window_poll_ms: int = WINDOW_POLL_MS_DEFAULT
    scoring_engine: str = "compiled"
    webhook_backoff_ms: int = WEBHOOK_BACKOFF_MS_DEFAULT
    webhook_lease_ms: int = WEBHOOK_LEASE_MS_DEFAULT
    trusted_proxies: tuple[str, ...] = ()
    metrics_public: bool = False
    webhook_allow_private: bool = False
    webhook_hosts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    webhook_dns: str = "system"
    stream_reauthorise_s: float = STREAM_REAUTHORISE_S_DEFAULT
    breaker_open_ms: int = DEFAULT_BREAKER_POLICY.open_ms

    def breaker_policy(self) -> BreakerPolicy:
        """Every outbound dependency's breaker: the spec's 5 failures, open AEX_BREAKER_OPEN_MS."""
        return BreakerPolicy(open_ms=self.breaker_open_ms)

    def endpoint_policy(self) -> EndpointPolicy:
        """The webhook endpoint policy of these settings (serve/notifications/endpoints.py)."""
        fallback = SystemResolver() if self.webhook_dns == "system" else None
        resolver = StaticResolver(dict(self.webhook_hosts), fallback)
        return EndpointPolicy(resolver, allow_private=self.webhook_allow_private)

    @property
    def database_path(self) -> Path:
        return self.data_dir / DATABASE_FILE

    @classmethod
    def from_env(cls, *, data_dir: Path, env: Mapping[str, str] | None = None) -> Settings:
        """The settings `env` describes. Everything that can be refused is refused before
        anything is written into `data_dir`: a bad value leaves no operator.key behind."""
        env = os.environ if env is None else env
        operator_key = env.get("AEX_OPERATOR_KEY")
        jwt_secret = env.get("AEX_JWT_SECRET") or env.get("JWT_SECRET")
        webhook_hex = env.get("AEX_WEBHOOK_KEY")
        # Secrets that would be generated are valid by construction: a stand-in checks the rest.
        draft = cls._read(
            env,
            data_dir=data_dir,
            operator_key=operator_key or _STAND_IN_SECRET,
            jwt_secret=jwt_secret or _STAND_IN_SECRET,
            webhook_key=_webhook_key(webhook_hex, None) if webhook_hex else _STAND_IN_KEY,
        )
        draft.validate()
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # new ones: owner only
        settings = replace(
            draft,
            operator_key=operator_key or _secret_file(data_dir / OPERATOR_KEY_FILE),
            jwt_secret=jwt_secret or _secret_file(data_dir / JWT_SECRET_FILE),
            webhook_key=_webhook_key(webhook_hex, data_dir / WEBHOOK_KEY_FILE),
        )
        settings.validate()
        return settings

    @classmethod
    def _read(
        cls,
        env: Mapping[str, str],
        *,
        data_dir: Path,
        operator_key: str,
        jwt_secret: str,
        webhook_key: bytes,
    ) -> Settings:
        return cls(
            data_dir=data_dir,
            operator_key=operator_key,
            jwt_secret=jwt_secret,
            webhook_key=webhook_key,
            cors_origins=tuple(o for o in env.get("AEX_CORS_ORIGINS", "").split(",") if o),
            rate_limit_per_minute=_optional_int(env, "AEX_RATE_LIMIT_PER_MINUTE"),
            requests_per_day=_optional_int(env, "AEX_REQUESTS_PER_DAY"),
            rate_limit_burst=_optional_int(env, "AEX_RATE_LIMIT_BURST") or DEFAULT_BURST_REQUESTS,
            anonymous_requests_per_minute=_optional_int(env, "AEX_ANONYMOUS_RATE_LIMIT_PER_MINUTE")
            or ANONYMOUS_REQUESTS_PER_MINUTE_DEFAULT,
            request_timeout_s=_float(env, "AEX_REQUEST_TIMEOUT_S", REQUEST_TIMEOUT_S_DEFAULT),
            sqlite_synchronous=env.get("AEX_SQLITE_SYNCHRONOUS", "FULL").upper(),
            sqlite_busy_timeout_s=_float(env, "AEX_SQLITE_BUSY_TIMEOUT_S", BUSY_TIMEOUT_S),
            weights=load_weights(env.get("AEX_WEIGHTS") or None),
            database_url=env.get("AEX_DATABASE_URL") or None,
            database_schema=env.get("AEX_DATABASE_SCHEMA") or "public",
            database_pool_max=_optional_int(env, "AEX_DATABASE_POOL_MAX")
            or DATABASE_POOL_MAX_DEFAULT,
            redis_url=env.get("AEX_REDIS_URL") or None,
            redis_prefix=env.get("AEX_REDIS_PREFIX", "aex:"),
            nats_url=env.get("AEX_NATS_URL") or None,
            nats_prefix=env.get("AEX_NATS_PREFIX", ""),
            nats_max_age_s=_float(env, "AEX_NATS_MAX_AGE_S", STREAM_MAX_AGE_S_DEFAULT),
            nats_duplicate_window_s=_float(
                env, "AEX_NATS_DUPLICATE_WINDOW_S", DUPLICATE_WINDOW_S_DEFAULT
            ),
            window_poll_ms=_int(env, "AEX_WINDOW_POLL_MS", WINDOW_POLL_MS_DEFAULT),
            scoring_engine=env.get("AEX_SCORING_ENGINE", "compiled").lower(),
            webhook_backoff_ms=_int(env, "AEX_WEBHOOK_BACKOFF_MS", WEBHOOK_BACKOFF_MS_DEFAULT),
            webhook_lease_ms=_int(env, "AEX_WEBHOOK_LEASE_MS", WEBHOOK_LEASE_MS_DEFAULT),
            trusted_proxies=tuple(
                p.strip() for p in env.get("AEX_TRUSTED_PROXIES", "").split(",") if p.strip()
            ),
            metrics_public=_flag(env, "AEX_METRICS_PUBLIC"),
            webhook_allow_private=_flag(env, "AEX_WEBHOOK_ALLOW_PRIVATE"),
            webhook_hosts=_hosts(env.get("AEX_WEBHOOK_HOSTS", "")),
            webhook_dns=env.get("AEX_WEBHOOK_DNS", "system").lower(),
            stream_reauthorise_s=_float(
                env, "AEX_STREAM_REAUTHORISE_S", STREAM_REAUTHORISE_S_DEFAULT
            ),
            breaker_open_ms=_int(env, "AEX_BREAKER_OPEN_MS", DEFAULT_BREAKER_POLICY.open_ms),
        )

    def validate(self) -> None:
        self._validate_secrets()
        if self.sqlite_synchronous not in {"FULL", "NORMAL", "EXTRA"}:
            raise ImproperlyConfiguredError("AEX_SQLITE_SYNCHRONOUS: FULL, NORMAL or EXTRA")
        if not 0 < self.sqlite_busy_timeout_s <= BUSY_TIMEOUT_S:
            raise ImproperlyConfiguredError(
                f"AEX_SQLITE_BUSY_TIMEOUT_S must be in (0, {BUSY_TIMEOUT_S:g}]"
            )
        if not 0 < self.request_timeout_s <= 600:
            raise ImproperlyConfiguredError("AEX_REQUEST_TIMEOUT_S must be in (0, 600]")
        if self.rate_limit_per_minute is not None and self.rate_limit_per_minute <= 0:
            raise ImproperlyConfiguredError("AEX_RATE_LIMIT_PER_MINUTE must be positive")
        if self.requests_per_day is not None and self.requests_per_day <= 0:
            raise ImproperlyConfiguredError("AEX_REQUESTS_PER_DAY must be positive")
        if self.rate_limit_burst <= 0 or self.anonymous_requests_per_minute <= 0:
            raise ImproperlyConfiguredError("rate limits must be positive")
        if self.database_url is not None and not self.database_url.startswith(
            ("postgresql://", "postgres://")
        ):
            raise ImproperlyConfiguredError("AEX_DATABASE_URL must be a postgresql:// URL")
        if re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", self.database_schema) is None:
            raise ImproperlyConfiguredError("AEX_DATABASE_SCHEMA: lower-case letters, _, digits")
        if self.database_pool_max < 2:
            raise ImproperlyConfiguredError("AEX_DATABASE_POOL_MAX must be at least 2")
        if self.redis_url is not None and not self.redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ImproperlyConfiguredError("AEX_REDIS_URL must be a redis:// URL")
        self._validate_nats()
        self._validate_timings()
        self._validate_proxies()

    def _validate_proxies(self) -> None:
        for proxy in self.trusted_proxies:
            _check_proxy(proxy)

    def _validate_secrets(self) -> None:
        if len(self.operator_key) < 32:
            raise ImproperlyConfiguredError("the operator key must have at least 32 characters")
        if len(self.jwt_secret) < 32:
            raise ImproperlyConfiguredError("the JWT secret must have at least 32 characters")
        if len(self.webhook_key) != SECRET_BOX_KEY_BYTES:
            raise ImproperlyConfiguredError("the webhook sealing key must have 32 bytes")

    def _validate_timings(self) -> None:
        if self.scoring_engine not in ENGINES:
            raise ImproperlyConfiguredError("AEX_SCORING_ENGINE: compiled or numpy")
        if not 1 <= self.window_poll_ms <= 60_000:
            raise ImproperlyConfiguredError("AEX_WINDOW_POLL_MS: milliseconds in [1, 60000]")
        if not 1 <= self.webhook_backoff_ms <= 600_000:
            raise ImproperlyConfiguredError("AEX_WEBHOOK_BACKOFF_MS: milliseconds in [1, 600000]")
        if not 100 <= self.webhook_lease_ms <= 3_600_000:
            raise ImproperlyConfiguredError("AEX_WEBHOOK_LEASE_MS: milliseconds in [100, 3600000]")
        if not 0.1 <= self.stream_reauthorise_s <= 3_600:
            raise ImproperlyConfiguredError("AEX_STREAM_REAUTHORISE_S: seconds in [0.1, 3600]")
        if not 100 <= self.breaker_open_ms <= 600_000:
            raise ImproperlyConfiguredError("AEX_BREAKER_OPEN_MS: milliseconds in [100, 600000]")
        if self.webhook_dns not in ("system", "off"):
            raise ImproperlyConfiguredError("AEX_WEBHOOK_DNS: system or off")

    def _validate_nats(self) -> None:
        if self.nats_url is not None and not self.nats_url.startswith(("nats://", "tls://")):
            raise ImproperlyConfiguredError("AEX_NATS_URL must be a nats:// URL")
        if self.nats_prefix and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.nats_prefix) is None:
            raise ImproperlyConfiguredError("AEX_NATS_PREFIX: letters, digits, _ and -")
        if not 0 < self.nats_max_age_s <= NATS_MAX_AGE_S_MAX:
            raise ImproperlyConfiguredError("AEX_NATS_MAX_AGE_S: seconds, in (0, 10 years]")
        if not 0 < self.nats_duplicate_window_s <= self.nats_max_age_s:
            raise ImproperlyConfiguredError(
                "AEX_NATS_DUPLICATE_WINDOW_S: seconds, positive and at most AEX_NATS_MAX_AGE_S"
            )


NATS_MAX_AGE_S_MAX = 10 * 365 * 86_400.0


def _check_proxy(proxy: str) -> None:
    # An address or a network, nothing else: uvicorn would take "*" (trust every peer, so any
    # client picks its own address) and silently ignore a typo (trust nobody).
    try:
        ipaddress.ip_network(proxy, strict=False)
    except ValueError:
        raise ImproperlyConfiguredError(
            f"AEX_TRUSTED_PROXIES: {proxy!r} is not an IP address or a CIDR network"
        ) from None


def _webhook_key(value: str | None, path: Path | None) -> bytes:
    # From the environment (parsed, nothing written) or the key file (made on first start).
    try:
        if value:
            return parse_key(value)
        assert path is not None, "without AEX_WEBHOOK_KEY the key comes from its file"
        return load_key(None, path)
    except ValueError as error:
        raise ImproperlyConfiguredError(str(error)) from error


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfiguredError(f"{name}: a number of seconds, not {raw!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ImproperlyConfiguredError(f"{name}: a finite number of seconds")
    return value


def load_weights(source: str | None) -> NamedWeights:
    """A preset name or a weights file (validated by the core); refused at startup, not later."""
    if source is None:
        return DEFAULT_WEIGHTS
    if source in PRESETS:
        return NamedWeights(source, PRESETS[source])
    path = Path(source)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        presets = ", ".join(sorted(PRESETS))
        raise ImproperlyConfiguredError(
            f"weights {source!r}: neither a preset ({presets}) nor an existing file"
        ) from None
    except (OSError, ValueError) as error:
        raise ImproperlyConfiguredError(f"weights file {source}: {error}") from error
    rules = rules_from_json(document)
    if isinstance(rules, Rejected):
        raise ImproperlyConfiguredError(
            f"weights file {source}: {rules.reason.value} ({rules.field}) {rules.detail}"
        )
    name = document.get("name") if isinstance(document, dict) else None
    return NamedWeights(
        str(name or path.stem),
        rules.weights,
        rules.calibration,
        rules.reputation,
        rules.payment_rule,
    )


def _optional_int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as error:
        raise ImproperlyConfiguredError(f"{name} must be an integer") from error


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip()
    if raw not in ("", "0", "1"):
        raise ImproperlyConfiguredError(f"{name}: 0 or 1, not {raw!r}")
    return raw == "1"


def _hosts(raw: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    try:
        return tuple(parse_hosts_table(raw).items())
    except ValueError as error:
        raise ImproperlyConfiguredError(
            f"AEX_WEBHOOK_HOSTS: name=address[|address],... (bad entry {error})"
        ) from None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    found = _optional_int(env, name)
    return default if found is None else found


def _secret_file(path: Path) -> str:
    # Generated once on first start, readable by the owner only (0600).
    if path.exists():
        return path.read_text().strip()
    secret = "aexop_" + secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of a cluster made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret
