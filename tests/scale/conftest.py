"""Two real server processes on one PostgreSQL schema and one Redis prefix (a small cluster)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from tests.serve.server import Backend, Server

PROCESSES = 2


@contextmanager
def cluster(
    base: Path,
    env: dict[str, str] | None = None,
    backend: Backend | None = None,
    *,
    processes: int = PROCESSES,
) -> Iterator[tuple[Backend, list[Server]]]:
    """PROCESSES servers sharing the backend (each its own port, to address each one)."""
    backend = backend or Backend("postgres")
    servers = [
        Server(base / f"node{n}" / "data", env={**backend.env, **(env or {})})
        for n in range(processes)
    ]
    for server in servers:
        server.data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        with ThreadPoolExecutor(processes) as pool:
            list(pool.map(Server.start, servers))
        yield backend, servers
    finally:
        for server in servers:
            server.stop()
        backend.cleanup()
