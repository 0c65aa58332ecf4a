"""Appends market-log rows to DuckDB in large Arrow batches, off the simulation thread.

The producer hands over numpy columns per table; they are buffered until a table holds
`batch_rows` rows (at most limits.market_log_batch_rows_max), concatenated, turned into one
Arrow table and inserted by a single writer thread through a bounded queue. Memory is thus
bounded by (tables × batch_rows × row width) plus the queue's few batches, whatever the run
length. DuckDB releases the GIL while inserting, so simulation and writing overlap.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from types import TracebackType

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from aex.core import limits
from aex.marketlog.schema import TABLES

__all__ = ["MarketLogWriter"]

_ARROW_TYPES = {
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "UTINYINT": pa.uint8(),
    "TINYINT": pa.int8(),
    "VARCHAR": pa.string(),
    "TIMESTAMP": pa.timestamp("us"),
}
_NUMPY_TYPES = {
    "BIGINT": np.int64,
    "INTEGER": np.int32,
    "DOUBLE": np.float64,
    "BOOLEAN": np.bool_,
    "UTINYINT": np.uint8,
    "TINYINT": np.int8,
}
_QUEUE_BATCHES_MAX = 4


class MarketLogWriter:
    """Buffers and appends rows of one run; use as a context manager, or call close()."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        run_id: int,
        *,
        batch_rows: int = limits.market_log_batch_rows_max,
        threaded: bool = True,
    ) -> None:
        assert 0 < batch_rows <= limits.market_log_batch_rows_max
        self._con = con
        self.run_id = run_id
        self._batch_rows = batch_rows
        self._buffers: dict[str, list[Mapping[str, npt.NDArray[np.generic]]]] = {
            t: [] for t in TABLES
        }
        self._buffered_rows = dict.fromkeys(TABLES, 0)
        self.rows_written = dict.fromkeys(TABLES, 0)
        self._queue: queue.Queue[tuple[str, list[Mapping[str, npt.NDArray[np.generic]]]] | None] = (
            queue.Queue(_QUEUE_BATCHES_MAX)
        )
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._drain, name="marketlog", daemon=True)
            self._thread.start()

    def append(self, table: str, columns: Mapping[str, npt.NDArray[np.generic]]) -> None:
        """Buffers one chunk of rows: every schema column but run_id, equal lengths."""
        if self._error is not None:
            raise RuntimeError("market-log writer failed") from self._error
        names = [c for c, _ in TABLES[table] if c != "run_id"]
        assert list(columns) == names, f"{table}: columns {list(columns)} != {names}"
        lengths = {len(v) for v in columns.values()}
        assert len(lengths) == 1, f"{table}: ragged columns"
        rows = lengths.pop()
        if rows == 0:
            return
        self._buffers[table].append(columns)
        self._buffered_rows[table] += rows
        if self._buffered_rows[table] >= self._batch_rows:
            self._flush(table)

    def _flush(self, table: str) -> None:
        # The Arrow table is built where it is inserted: on the writer thread when threaded, so
        # the concatenation and conversion leave the engine's thread free.
        chunks = self._buffers[table]
        if not chunks:
            return
        self._buffers[table] = []
        self._buffered_rows[table] = 0
        self.rows_written[table] += sum(len(next(iter(c.values()))) for c in chunks)
        if self._thread is None:
            self._insert(table, chunks)
        else:
            self._queue.put((table, chunks))

    def _arrow(self, table: str, chunks: list[Mapping[str, npt.NDArray[np.generic]]]) -> pa.Table:
        rows = sum(len(next(iter(c.values()))) for c in chunks)
        arrays = [pa.array(np.full(rows, self.run_id, dtype=np.int64))]
        for name, kind in TABLES[table][1:]:
            values = np.concatenate([c[name] for c in chunks])
            if kind in _NUMPY_TYPES:
                values = values.astype(_NUMPY_TYPES[kind], copy=False)
            arrays.append(pa.array(values, type=_ARROW_TYPES[kind]))
        return pa.Table.from_arrays(arrays, names=[c for c, _ in TABLES[table]])

    def _insert(self, table: str, chunks: list[Mapping[str, npt.NDArray[np.generic]]]) -> None:
        batch = self._arrow(table, chunks)
        self._con.register("_marketlog_batch", batch)
        try:
            assert table in TABLES  # a schema name, never user input
            self._con.execute(f"INSERT INTO {table} SELECT * FROM _marketlog_batch")  # noqa: S608
        finally:
            self._con.unregister("_marketlog_batch")

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self._insert(*item)
                except BaseException as error:  # surfaced to the producer on its next call
                    self._error = error

    def close(self) -> None:
        """Flushes every buffer and waits for the writer thread; re-raises its failure."""
        for table in TABLES:
            self._flush(table)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise RuntimeError("market-log writer failed") from self._error

    def __enter__(self) -> MarketLogWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
