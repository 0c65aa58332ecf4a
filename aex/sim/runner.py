"""The simulator's driver: load → step the core-backed engine → persist to the market log.

`simulate` owns every side effect of a run: the seed (drawing and recording OS entropy when
none is given), the DuckDB connection, the streamed writer and the progress bar.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import json
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from aex import marketlog
from aex.core import limits
from aex.sim import _core, engine
from aex.sim.scenario import ReputationParams, ScenarioError, ScenarioParams

__all__ = [
    "BATCH_ROWS_DEFAULT",
    "RunResult",
    "resolve_seed",
    "simulate",
    "with_rules",
    "with_weights",
]

# Rows per table buffered before one Arrow insert: large enough that DuckDB appends in bulk,
# small enough that eight tables' buffers plus the writer queue stay in a few hundred MiB.
BATCH_ROWS_DEFAULT = 262_144
assert limits.market_log_batch_rows_max >= BATCH_ROWS_DEFAULT


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: int
    seed: int
    replication: int
    ticks: int
    work_items: int
    bids: int
    awards: int
    successes: int
    fee_minor: int
    elapsed_s: float
    rounds_mean: float

    @property
    def auctions_per_s(self) -> float:
        return self.awards / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    @property
    def success_rate(self) -> float:
        return self.successes / self.awards if self.awards else 0.0

    @property
    def fee_per_work_minor(self) -> float:
        return self.fee_minor / self.work_items if self.work_items else 0.0


def resolve_seed(seed: int | None) -> int:
    """The given seed, or fresh 128-bit OS entropy (to be recorded) when None."""
    if seed is not None:
        return seed
    entropy = np.random.SeedSequence().entropy
    assert isinstance(entropy, int)
    return entropy


def with_weights(params: ScenarioParams, weights: _core.Weights) -> ScenarioParams:
    """The same scenario scored with other weights (everything else, seeds and the rest of
    the exchange's rules included, equal)."""
    values = {f.name: float(getattr(weights, f.name)) for f in dataclasses.fields(weights)}
    return dataclasses.replace(params, scoring=dataclasses.replace(params.scoring, weights=values))


def with_rules(params: ScenarioParams, document: Mapping[str, object]) -> ScenarioParams:
    """The same scenario under an exchange rules file (the document `aex serve --weights`
    loads; aex/core/rules.py): its weights, its confidence calibration (absent: the spec's
    plain confidence) and its payment rule (absent: first score) replace the scenario's; its
    reputation rule does only where the file names one. Raises ScenarioError naming the file's
    field when the core refuses it."""
    made = _core.rules_from_json(document)
    if not isinstance(made, _core.ExchangeRules):
        raise ScenarioError(f"rules file: {made.field}: {made.detail}")
    scored = with_weights(params, made.weights)
    calibration = {} if made.calibration is None else dataclasses.asdict(made.calibration)
    scored = dataclasses.replace(
        scored,
        scoring=dataclasses.replace(
            scored.scoring, calibration=calibration, payment_rule=made.payment_rule.value
        ),
    )
    if "reputation" in document:
        r = made.reputation
        scored = dataclasses.replace(
            scored,
            reputation=ReputationParams(
                rule=r.rule.value, prior_alpha=r.prior_alpha, prior_beta=r.prior_beta
            ),
        )
    return scored


# glibc malloc: keep freed block-sized arrays in the heap instead of returning them to the OS
# (mmap/munmap per array made every block's columns page-fault afresh: ~40% of the engine's
# time on the reference market). Values: mallopt parameter codes and their settings.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MALLOC_SETTINGS = (
    (_M_MMAP_THRESHOLD, 32 * 2**20),  # glibc's maximum on 64-bit: arrays below it use the heap
    (_M_TRIM_THRESHOLD, 512 * 2**20),  # free heap top kept before trimming
    (_M_TOP_PAD, 64 * 2**20),  # heap growth step
)


def _retain_freed_memory() -> None:
    # Best effort and process-wide: a no-op where the C library has no mallopt (not glibc).
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return
    for parameter, value in _MALLOC_SETTINGS:
        mallopt(ctypes.c_int(parameter), ctypes.c_int(value))


def _params_json(params: ScenarioParams) -> str:
    return json.dumps(dataclasses.asdict(params), default=str, sort_keys=True)


def simulate(
    params: ScenarioParams,
    *,
    out: str | Path | duckdb.DuckDBPyConnection = ":memory:",
    replication: int = 0,
    batch_rows: int = BATCH_ROWS_DEFAULT,
    progress: Callable[[engine.BlockLog], None] | None = None,
    threaded_writer: bool = True,
    prefetch: bool = True,
) -> tuple[RunResult, duckdb.DuckDBPyConnection]:
    """Runs one replication of a scenario into the market log at `out` (a path or connection).

    Returns the run's counters and the open connection (for metrics). The seed is
    params.seed, or recorded OS entropy when it is None. `prefetch` draws the next blocks'
    randomness on a second thread (same results either way).
    """
    assert params.ticks <= limits.sim_steps_max
    seed = resolve_seed(params.seed)
    con = out if isinstance(out, duckdb.DuckDBPyConnection) else marketlog.connect(out)
    marketlog.create_schema(con)
    run_id = marketlog.next_run_id(con)
    weights = params.weights
    weights_json = json.dumps(_core.weights_to_json(weights))
    con.execute(
        "INSERT INTO runs VALUES (?, 'sim', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            params.name,
            str(seed),
            replication,
            weights_json,
            params.scoring.fee_bps,
            params.currency,
            params.ticks,
            params.market.tick_ms,
            params.log.bids,
            _params_json(params),
            datetime.now(UTC).replace(tzinfo=None),
            marketlog.code_version(),
        ],
    )
    _retain_freed_memory()
    streams = engine.Streams.spawn(seed, replication)
    population, state = engine.init(streams.population, params)
    totals: dict[str, int] = dict.fromkeys(
        ("work", "bids", "awards", "ok", "fee", "rounds", "blocks"), 0
    )
    started = time.perf_counter()
    drawer = _Drawer(streams, params, population, state.tick) if prefetch else None
    with (
        marketlog.MarketLogWriter(
            con, run_id, batch_rows=batch_rows, threaded=threaded_writer
        ) as writer,
        contextlib.closing(drawer) if drawer is not None else contextlib.nullcontext(),
    ):
        identities = np.arange(population.size, dtype=np.int64)
        writer.append(
            "providers", engine.provider_rows(population, identities + 1, identities, None)
        )
        for _ in range(limits.sim_steps_max):
            if state.tick >= params.ticks:
                break
            draws = drawer.next() if drawer is not None else None
            state, log = engine.step(streams, state, params, population, weights, draws)
            for table, columns in log.tables.items():
                writer.append(table, columns)
            _accumulate(totals, log)
            if progress is not None:
                progress(log)
    elapsed = time.perf_counter() - started
    marketlog.store_welfare(con, run_id)
    result = RunResult(
        run_id=run_id,
        seed=seed,
        replication=replication,
        ticks=state.tick,
        work_items=totals["work"],
        bids=totals["bids"],
        awards=totals["awards"],
        successes=totals["ok"],
        fee_minor=totals["fee"],
        elapsed_s=elapsed,
        rounds_mean=totals["rounds"] / max(totals["blocks"], 1),
    )
    return result, con


_DRAWS_AHEAD = 2  # blocks drawn ahead: one being cleared, two ready (bounded memory)
_DRAWER_POLL_S = 0.1  # how often a blocked producer checks whether the run stopped


class _Drawer:
    """Draws the blocks' randomness in order on a producer thread, `_DRAWS_AHEAD` blocks ahead
    of the engine. numpy's Generator fills and ufuncs release the GIL, so on a second core the
    draws overlap the clearing. The drawer owns `streams` for the whole run: the engine draws
    nothing itself when handed a block's `Draws`, so the results equal the serial run's."""

    def __init__(
        self,
        streams: engine.Streams,
        params: ScenarioParams,
        population: engine.Population,
        tick: int,
    ) -> None:
        self._queue: queue.Queue[engine.Draws | BaseException] = queue.Queue(_DRAWS_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(streams, params, population, tick), name="sim-draws"
        )
        self._thread.daemon = True
        self._thread.start()

    def _run(
        self,
        streams: engine.Streams,
        params: ScenarioParams,
        population: engine.Population,
        tick: int,
    ) -> None:
        try:
            while tick < params.ticks and not self._stop.is_set():
                draws = engine.draw_block(streams, params, population, tick)
                self._put(draws)
                tick += draws.ticks
        except BaseException as error:  # handed to the engine's thread, raised there
            self._put(error)

    def _put(self, item: engine.Draws | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_DRAWER_POLL_S)
                return
            except queue.Full:
                continue

    def next(self) -> engine.Draws:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def _accumulate(totals: dict[str, int], log: engine.BlockLog) -> None:
    totals["work"] += log.work_items
    totals["bids"] += log.bids
    totals["awards"] += log.awards
    totals["ok"] += log.successes
    totals["fee"] += log.fee_minor
    totals["rounds"] += log.rounds
    totals["blocks"] += 1


def summary(con: duckdb.DuckDBPyConnection, result: RunResult) -> dict[str, Any]:
    return marketlog.run_summary(con, result.run_id)
