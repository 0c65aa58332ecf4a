"""The SQLite files (serve/stores/sqlite.py) are readable by the owner only: a new database
and its -wal/-shm are 0600 whatever the umask, and files left 0644 by an older version are
made 0600 when the store opens them."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from serve.stores.sqlite import SqliteStore


def _modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


def test_a_new_database_and_its_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0)  # the loosest umask: the mode must not depend on it
    try:
        store = SqliteStore(tmp_path / "aex.sqlite3", synchronous="NORMAL")
        store.connection().execute("SELECT count(*) FROM tenants").fetchone()
    finally:
        os.umask(previous)
    modes = _modes(tmp_path)
    assert {"aex.sqlite3", "aex.sqlite3-wal", "aex.sqlite3-shm", "aex.sqlite3.epoch"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes


def test_files_left_world_readable_are_made_owner_only_at_open(tmp_path: Path) -> None:
    path = tmp_path / "aex.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("CREATE TABLE t (x)")
    for name in ("aex.sqlite3", "aex.sqlite3-wal", "aex.sqlite3-shm"):
        os.chmod(tmp_path / name, 0o644)
    SqliteStore(path, synchronous="NORMAL")
    connection.close()
    assert set(_modes(tmp_path).values()) == {0o600}, _modes(tmp_path)
