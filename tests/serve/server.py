"""A real `aex serve` process on a free port with its own data directory (no mocks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

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
        deadline = time.monotonic() + 30
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
