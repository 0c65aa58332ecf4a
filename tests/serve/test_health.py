"""`aex serve` (what `make run` runs) answers GET /health over real HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_aex_serve_answers_health(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    command = [sys.executable, "-m", "aex.cli", "serve", "--port", str(port)]
    process = subprocess.Popen([*command, "--data-dir", str(data_dir)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "server exited"
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert data_dir.is_dir()
    finally:
        process.terminate()
        process.wait(timeout=10)
