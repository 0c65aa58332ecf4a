"""The SQLite data directory's disk fills up under a real server: writes are refused with a
507 `insufficient-storage` problem (nothing half-written), reads still work, the database
passes `PRAGMA integrity_check`, and once space is freed writes succeed again with every
earlier write still there. The disk is a small tmpfs mounted on the data directory (root
only; the test is skipped where mounting is not permitted)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.serve.conftest import sign_up
from tests.serve.server import Server

DISK = "16m"
PROBLEM = "https://aex.dev/problems/insufficient-storage"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "data"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mount not permitted: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    """Writes a file until the disk has no byte left."""
    filler = directory / "filler"
    chunk = b"\0" * 65_536
    with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(chunk)
    with filler.open("ab", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0")
    return filler


def test_a_full_disk_refuses_writes_with_507_and_corrupts_nothing(small_disk: Path) -> None:
    server = Server(small_disk)
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            tenant = sign_up(client, "Disk", "CONSUMER")
            body = {"tenant_id": tenant.tenant_id, "amount": "3.00", "currency": "USD"}

            def deposit() -> httpx.Response:
                key = {"Idempotency-Key": uuid.uuid4().hex}
                return client.post("/v1/deposits", json=body, headers={**tenant.headers, **key})

            before = [deposit() for _ in range(5)]
            assert {response.status_code for response in before} == {201}
            filler = fill(small_disk)
            refused = [deposit() for _ in range(20)]  # the WAL needs pages it cannot get
            statuses = {response.status_code for response in refused}
            assert 507 in statuses, statuses
            assert statuses <= {201, 507}, statuses  # refused cleanly, never a 500
            problem = next(response for response in refused if response.status_code == 507)
            assert problem.headers["content-type"].startswith("application/problem+json")
            assert problem.json()["type"] == PROBLEM
            accepted = sum(response.status_code == 201 for response in refused)
            read = client.get("/v1/balance", headers=tenant.headers)  # reads go on
            assert read.status_code == 200

            filler.unlink()  # space again: writes succeed, on the same process
            after = deposit()
            assert after.status_code == 201, after.text
            assert server.process is not None
            assert server.process.poll() is None
            balance = client.get("/v1/balance", headers=tenant.headers).json()["available"]
            assert Decimal(balance) == Decimal("3.00") * (len(before) + accepted + 1)
    finally:
        server.stop()
    with sqlite3.connect(small_disk / "aex.sqlite3") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
