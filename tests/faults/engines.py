"""Private engines for the fault tests: a PostgreSQL cluster, a nats-server and a redis-server
of the test's own, each on a free loopback port, that a test may stop and start at will (the
shared services on 5432, 6379 and 4222 are never touched)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.serve.server import free_port

START_TIMEOUT_S = 20.0


def _pg_bin(name: str) -> str | None:
    for found in (shutil.which(name), *sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))):
        if found and os.access(found, os.X_OK):
            return found
    return None


def _wait_for_port(port: int, *, up: bool, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                listening = True
        except OSError:
            listening = False
        if listening == up:
            return
        assert time.monotonic() < deadline, f"port {port} still {'down' if up else 'up'}"
        time.sleep(0.05)


class PrivatePostgres:
    """initdb into a temporary directory (as the `postgres` user when run as root), then
    `pg_ctl start/stop` on a free port; `url` reaches its `postgres` database."""

    def __init__(self) -> None:
        initdb, self._pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        assert initdb, "PostgreSQL's initdb is not installed"
        assert self._pg_ctl, "PostgreSQL's pg_ctl is not installed"
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="aex-fault-pg-"))
        self.data = self.base / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.base, "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        subprocess.run(
            [*self._as_user, *command],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def start(self) -> None:
        assert self._pg_ctl is not None
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=100"
        )
        log = str(self.base / "postgres.log")
        self._run(self._pg_ctl, "-D", str(self.data), "-l", log, "-o", options, "-w", "start")
        _wait_for_port(self.port, up=True)

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: every backend killed at once, no shutdown checkpoint (a crash)."""
        assert self._pg_ctl is not None
        self._run(self._pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")
        _wait_for_port(self.port, up=False)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


class PrivateProcess:
    """A server binary run as a child process on a free port (nats-server, redis-server)."""

    def __init__(self, command: list[str], port: int, base: Path) -> None:
        self.command, self.port, self.base = command, port, base
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.base / "server.log").open("ab")
        self.process = subprocess.Popen(self.command, stdout=log, stderr=log, cwd=self.base)
        _wait_for_port(self.port, up=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        _wait_for_port(self.port, up=False)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def private_nats() -> PrivateProcess:
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    port, base = free_port(), Path(tempfile.mkdtemp(prefix="aex-fault-nats-"))
    command = [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(base / "js")]
    return PrivateProcess(command, port, base)


def private_redis() -> PrivateProcess:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port, base = free_port(), Path(tempfile.mkdtemp(prefix="aex-fault-redis-"))
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    return PrivateProcess([*command, "no"], port, base)
