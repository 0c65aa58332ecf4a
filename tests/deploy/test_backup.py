"""docs/operations.md's backups, taken from a running server: SQLite's online backup (Python's
sqlite3 backup API and the sqlite3 shell's `.backup`) and `pg_dump` of the PostgreSQL schema
restored into a fresh database; each copy is consistent and holds what the server had
acknowledged before the backup began."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.serve.server import TEST_DATABASE_URL, Backend, Server

# real servers on PostgreSQL and Redis (and SQLite)
pytestmark = [pytest.mark.services, pytest.mark.slow]


def make_tenants(server: Server, count: int) -> set[str]:
    made = set()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(count):
            created = client.post("/v1/tenants", json={"name": f"Backup {i}", "type": "BOTH"})
            assert created.status_code == 201, created.text
            made.add(created.json()["tenant_id"])
    return made


def tenants_in(copy: Path) -> set[str]:
    connection = sqlite3.connect(copy)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {row[0] for row in connection.execute("SELECT tenant_id FROM tenants")}
    finally:
        connection.close()


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data").start()
    yield server
    server.stop()


def test_sqlite_online_backup_of_a_running_server(sqlite_server: Server, tmp_path: Path) -> None:
    before = make_tenants(sqlite_server, 5)
    live = sqlite_server.data_dir / "aex.sqlite3"
    # Python's backup API: a consistent snapshot while the server keeps its connections open
    copy = tmp_path / "python-backup.sqlite3"
    source, target = sqlite3.connect(live), sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    after = make_tenants(sqlite_server, 2)  # the server goes on writing
    assert before <= tenants_in(copy)
    assert not after & tenants_in(copy)
    # the sqlite3 shell's .backup
    shell = shutil.which("sqlite3")
    assert shell, "the sqlite3 shell (Debian's sqlite3 package)"
    copy_by_shell = tmp_path / "shell-backup.sqlite3"
    done = subprocess.run(
        [shell, str(live), f".backup '{copy_by_shell}'"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert before | after <= tenants_in(copy_by_shell)


@pytest.fixture
def postgres_server(tmp_path: Path) -> Iterator[tuple[Server, Backend]]:
    backend = Backend("postgres")
    server = Server(tmp_path / "data", env=backend.env).start()
    try:
        yield server, backend
    finally:
        server.stop()
        backend.cleanup()


def test_pg_dump_of_a_running_server_restores(
    postgres_server: tuple[Server, Backend], tmp_path: Path
) -> None:
    server, backend = postgres_server
    before = make_tenants(server, 5)
    dump = tmp_path / "aex.dump"
    done = subprocess.run(
        ["pg_dump", "-Fc", f"--schema={backend.schema}", f"--file={dump}", TEST_DATABASE_URL],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    restored = f"aex_restore_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {restored}".encode())
    try:
        restored_url = TEST_DATABASE_URL.rsplit("/", 1)[0] + "/" + restored
        done = subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={restored_url}", str(dump)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        with psycopg.connect(restored_url) as connection:
            rows = connection.execute(f"SELECT tenant_id FROM {backend.schema}.tenants".encode())
            assert before <= {row[0] for row in rows}
    finally:
        with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {restored} WITH (FORCE)".encode())
