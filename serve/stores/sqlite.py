"""The embedded store: one SQLite file in WAL mode, migrations applied on start.

Every write is one `BEGIN IMMEDIATE` transaction (the write lock is taken up front, so two
writers never deadlock upgrading a read lock); reads run outside transactions on WAL
snapshots. One connection per thread: handlers run in the worker thread pool. With
`synchronous=FULL` (the default) a COMMIT returns only once the WAL is on disk, so an
acknowledged write survives a `kill -9` and a power cut.

The database, its `-wal` and `-shm` files and the `.epoch` map are readable by the owner only
(0600): the main file is created with that mode before SQLite opens it (SQLite gives the WAL
and shared-memory files the main file's mode), and files made by an older version are
chmod-ed at open. `secure_delete` overwrites deleted rows, so nothing deleted stays readable
in free pages.
"""

from __future__ import annotations

import mmap
import os
import sqlite3
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from serve.stores.idempotency_store import IdempotencyRecords
from serve.stores.identity_store import IdentityStore
from serve.stores.migrations import MIGRATIONS
from serve.stores.registry_store import RegistryStore
from serve.stores.sql import Sql, SqliteSql, schema_version_in

# How long a statement waits for another connection's write lock (another process's write, a
# backup, the CLI) before it fails with "database is locked". Tests shorten it.
BUSY_TIMEOUT_S = 30.0


class SqliteStore(IdentityStore, RegistryStore, IdempotencyRecords):
    """KeyStore + IdempotencyStore (+ LedgerStore, see serve/settlement/sqlite_ledger.py): the
    shared stores' SQL over one connection per thread; here only the SQLite parts."""

    def __init__(
        self, path: Path, *, synchronous: str = "FULL", busy_timeout_s: float = BUSY_TIMEOUT_S
    ) -> None:
        assert synchronous in {"FULL", "NORMAL", "EXTRA"}
        assert 0 < busy_timeout_s <= BUSY_TIMEOUT_S
        self.path = path
        self._synchronous = synchronous
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        secure_database_files(path)
        self.migrate()
        self._epoch_map = _open_epoch_map(path.with_name(path.name + ".epoch"))
        self._publish_epoch()

    # -- plumbing ---------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self.open_connection()
            self._local.connection = connection
        return connection

    def open_connection(self, *, check_same_thread: bool = True) -> sqlite3.Connection:
        """A new connection in autocommit mode (transactions are explicit), WAL, FULL sync."""
        connection = sqlite3.connect(
            self.path,
            isolation_level=None,
            timeout=self._busy_timeout_s,
            check_same_thread=check_same_thread,
        )
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {self._synchronous}")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA secure_delete = ON")
        connection.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; any exception (an assert too) rolls everything back."""
        connection = self.connection()
        connection.execute("BEGIN IMMEDIATE")
        _THREAD_FLAGS.epoch_bumped = False
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        if _THREAD_FLAGS.epoch_bumped:
            self._publish_epoch()

    def _publish_epoch(self) -> None:
        # After the COMMIT: the shared map follows the table (the source of truth).
        epoch = IdentityStore.credentials_epoch(self)  # the table, not the map
        struct.pack_into("<q", self._epoch_map, 0, epoch)

    def migrate(self) -> int:
        with self.transaction() as tx:
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
            )
            version = schema_version_in(SqliteSql(tx))
            for number, script in MIGRATIONS:
                if number <= version:
                    continue
                for statement in script.split(";"):
                    if statement.strip():
                        tx.execute(statement)
                tx.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
                version = number
        return version

    def schema_version(self) -> int:
        with self._read() as connection:
            return schema_version_in(connection)

    # -- the shared stores' hooks (serve/stores/sql.py) --------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Sql]:
        yield SqliteSql(self.connection())

    @contextmanager
    def _write(self) -> Iterator[Sql]:
        with self.transaction() as connection:
            yield SqliteSql(connection)

    def _epoch_moved(self) -> None:
        _THREAD_FLAGS.epoch_bumped = True  # published after the COMMIT (`transaction`)

    def credentials_epoch(self) -> int:
        """Read from a shared memory map of `<db>.epoch` (every worker maps the same file): a
        memory read, no syscall, so the per-request check costs nothing even while the ledger
        writer thread holds the GIL."""
        return int(struct.unpack_from("<q", self._epoch_map, 0)[0])


def mark_credentials_epoch_bumped() -> None:
    """A write on this thread's transaction bumped `credentials_epoch` itself
    (serve/billing/usecases.py in the market's transaction): the epoch map is published after its
    COMMIT. A no-op for a PostgreSQL transaction (its workers read the table)."""
    _THREAD_FLAGS.epoch_bumped = True


DATABASE_FILE_MODE = 0o600
_DATABASE_FILE_SUFFIXES = ("", "-wal", "-shm", "-journal", ".epoch")


def secure_database_files(path: Path) -> None:
    """Creates the database file 0600 when missing (before SQLite does, with the umask's mode)
    and makes every file of the database 0600: the main file, -wal, -shm, -journal, .epoch."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, DATABASE_FILE_MODE))
    os.close(os.open(path.with_name(path.name + ".epoch"), os.O_RDWR | os.O_CREAT, 0o600))
    for suffix in _DATABASE_FILE_SUFFIXES:
        with suppress(FileNotFoundError):
            os.chmod(path.with_name(path.name + suffix), DATABASE_FILE_MODE)


def _open_epoch_map(path: Path) -> mmap.mmap:
    with path.open("ab") as handle:
        if handle.tell() < _EPOCH_BYTES:
            handle.write(b"\0" * (_EPOCH_BYTES - handle.tell()))
    with path.open("r+b") as handle:
        return mmap.mmap(handle.fileno(), _EPOCH_BYTES)


_EPOCH_BYTES = 8
# Per thread: did the running transaction bump the epoch (publish it after the COMMIT)?
_THREAD_FLAGS = threading.local()
