"""A real `aex serve` process on a free port with its own data directory (no mocks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from serve.stores.base import LedgerStore
from serve.stores.market_db import MarketDb

OPERATOR_KEY = "aexop_test_" + "0" * 40
JWT_SECRET = "test-jwt-secret-" + "s" * 64
# High enough that the functional tests never meet the limiter; test_rate_limit lowers it.
TEST_ENV = {
    "AEX_OPERATOR_KEY": OPERATOR_KEY,
    "AEX_JWT_SECRET": JWT_SECRET,
    "AEX_RATE_LIMIT_PER_MINUTE": "1000000",
    "AEX_RATE_LIMIT_BURST": "100000",
    "AEX_ANONYMOUS_RATE_LIMIT_PER_MINUTE": "1000000",
    "AEX_CORS_ORIGINS": "https://dashboard.example",
    # Tests send traffic to loopback only: no DNS (a name resolves only through
    # AEX_WEBHOOK_HOSTS), and the webhook tests' receivers listen on 127.0.0.1, which the
    # exchange refuses unless the operator allows private addresses
    # (tests/serve/test_webhook_ssrf.py runs servers without this flag).
    "AEX_WEBHOOK_DNS": "off",
    "AEX_WEBHOOK_ALLOW_PRIVATE": "1",
    "AEX_WEBHOOK_HOSTS": "hooks.test=127.0.0.1",  # a name for the receivers (pinning tests)
    # A test server scores with the core's numpy engine and never loads numba: warming the
    # kernel costs ~2.6 s of CPU per start even from numba's cache, and the suite starts ~150
    # servers. The engines are equal (tests/core/test_scoring_kernel.py); the compiled path
    # of a live server is tested by tests/serve/test_market_restart.py and
    # tests/serve/test_evaluation_warm_up.py.
    "AEX_SCORING_ENGINE": "numpy",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"server-{self.port}.log"

    def start(self) -> Server:
        command = [sys.executable, "-m", "aex.cli", "serve", "--port", str(self.port), *self.args]
        environment = {**os.environ, **TEST_ENV, **self.env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*command, "--data-dir", str(self.data_dir)], env=environment, stderr=log
        )
        deadline = time.monotonic() + 60  # slow starts on a loaded CI box
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, "server exited"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


# The scale-out services of .ci/run; AEX_TEST_DATABASE_URL / AEX_TEST_REDIS_URL override them.
TEST_DATABASE_URL = os.environ.get(
    "AEX_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TEST_REDIS_URL = os.environ.get("AEX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ("sqlite", "postgres")


@dataclass
class Backend:
    """The environment of a server on one backend: "sqlite" (embedded, in-process state) or
    "postgres" (PostgreSQL in a private schema + Redis under a private key prefix)."""

    name: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    @property
    def env(self) -> dict[str, str]:
        if self.name == "sqlite":
            return {}
        return {
            "AEX_DATABASE_URL": TEST_DATABASE_URL,
            "AEX_DATABASE_SCHEMA": self.schema,
            "AEX_REDIS_URL": TEST_REDIS_URL,
            "AEX_REDIS_PREFIX": self.redis_prefix,
        }

    @property
    def schema(self) -> str:
        return f"aex_test_{self.tag}"

    @property
    def redis_prefix(self) -> str:
        return f"aex_test_{self.tag}:"

    @contextmanager
    def ledger(self, data_dir: Path) -> Iterator[LedgerStore]:
        """The ledger a server on this backend wrote (to check its invariants directly)."""
        if self.name == "sqlite":
            from serve.settlement.sqlite_ledger import SqliteLedger
            from serve.stores.sqlite import SqliteStore

            yield SqliteLedger(SqliteStore(data_dir / "aex.sqlite3"))
            return
        from serve.settlement.postgres_ledger import PostgresLedger
        from serve.stores.postgres import PostgresStore

        store = PostgresStore(TEST_DATABASE_URL, schema=self.schema, pool_min=1, pool_max=2)
        try:
            yield PostgresLedger(store)
        finally:
            store.close()

    @contextmanager
    def market_db(self, data_dir: Path) -> Iterator[MarketDb]:
        """The market database a server on this backend wrote (to read its rows directly)."""
        from serve.stores.market_db import PostgresMarketDb, open_market_db

        db = open_market_db(data_dir, self.env)
        try:
            yield db
        finally:
            if isinstance(db, PostgresMarketDb):
                db.store.close()

    def cleanup(self) -> None:
        if self.name == "sqlite":
            return
        import psycopg
        import redis

        with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE".encode())
        client = redis.Redis.from_url(TEST_REDIS_URL)
        keys = list(client.scan_iter(match=self.redis_prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@contextmanager
def in_process(app: Any) -> Iterator[str]:
    """`app` served by uvicorn on a thread of this process, on a free loopback port, for a
    test that must reach into the running application (its tracer, its gateway): its URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive(), "server exited"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
