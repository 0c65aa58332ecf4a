"""Parameter sweeps: many (scenario, replication) runs through a swappable executor.

An `Executor` is anything with `map(fn, items) -> list`, the shape of `concurrent.futures`
and of scipy's `workers=` argument. Three ship here: in-process (`SerialExecutor`), a local
process pool (`ProcessExecutor`, the default) and a Dask cluster (`DaskExecutor`, given a
`distributed.Client`); `ProgressExecutor` wraps any of them and reports every finished task
(a tqdm bar's `update`). Tasks are plain frozen records and `evaluate` is a module-level function,
so they pickle to any worker. Each task runs into an in-memory market log and returns its
summary metrics, so workers share nothing.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import polars as pl

from aex import marketlog
from aex.sim.runner import simulate
from aex.sim.scenario import ScenarioParams

__all__ = [
    "DaskExecutor",
    "Executor",
    "ProcessExecutor",
    "ProgressExecutor",
    "SerialExecutor",
    "SweepTask",
    "default_executor",
    "evaluate",
    "progress_bar",
    "sweep",
]

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]: ...


class SerialExecutor:
    """Runs tasks in this process (tests, debugging, one core)."""

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        return [fn(item) for item in items]

    def __call__(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        return self.map(fn, items)


class ProcessExecutor:
    """A local process pool; the pool lives as long as this object (use `with` or close())."""

    def __init__(self, max_workers: int | None = None) -> None:
        workers = max_workers or max(1, (os.cpu_count() or 1))
        self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        return list(self._pool.map(fn, items))

    def __call__(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        return self.map(fn, items)

    def close(self) -> None:
        self._pool.shutdown()

    def __enter__(self) -> ProcessExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DaskExecutor:
    """Hands tasks to a Dask cluster through a `distributed.Client`."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        futures = self._client.map(fn, list(items), pure=False)
        return list(self._client.gather(futures))

    def __call__(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        return self.map(fn, items)


class ProgressExecutor:
    """Any executor, reporting finished tasks to `done(n)` (e.g. a tqdm bar's `update`): one by
    one in process and on a local pool (results stream back in order), once per batch on
    anything else (a Dask cluster). Callable as well, so scipy takes it as `workers=`."""

    def __init__(self, inner: Executor, done: Callable[[int], object]) -> None:
        self._inner = inner
        self._done = done

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        listed = list(items)
        if isinstance(self._inner, SerialExecutor):
            streamed: Iterable[R] = (fn(item) for item in listed)
        elif isinstance(self._inner, ProcessExecutor):
            streamed = self._inner._pool.map(fn, listed)
        else:
            out = self._inner.map(fn, listed)
            self._done(len(out))
            return out
        results: list[R] = []
        for value in streamed:
            results.append(value)
            self._done(1)
        return results

    def __call__(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        return self.map(fn, items)


def progress_bar(total: int | None, *, unit: str, disable: bool, desc: str | None = None) -> Any:
    """The workbench's one progress bar: tqdm on stderr, gone when done (`leave=False`)."""
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, disable=disable, leave=False)


def default_executor() -> ProcessExecutor:
    return ProcessExecutor()


@dataclass(frozen=True, slots=True)
class SweepTask:
    """One run: a scenario (with its seed and weights) and a replication index."""

    params: ScenarioParams
    replication: int = 0
    label: str = ""


def evaluate(task: SweepTask) -> dict[str, Any]:
    """Runs one task into an in-memory market log; returns its summary metrics."""
    params = task.params
    lean = dataclasses.replace(params.log, bids="none", reputation="none")
    params = dataclasses.replace(params, log=lean)
    result, con = simulate(params, replication=task.replication, threaded_writer=False)
    try:
        summary = marketlog.run_summary(con, result.run_id)
    finally:
        con.close()
    profits = summary.pop("profit_by_strategy_minor")
    return {
        "label": task.label,
        "scenario": params.name,
        "seed": str(result.seed),
        "replication": task.replication,
        **summary,
        **{f"profit_{k}_minor": v for k, v in profits.items()},
    }


def sweep(
    tasks: Sequence[SweepTask], executor: Executor | None = None, *, progress: bool = False
) -> pl.DataFrame:
    """Evaluates every task (on a local process pool unless an executor is given); with
    `progress`, a bar over the tasks on stderr."""
    with progress_bar(len(tasks), unit="run", disable=not progress) as bar:
        if executor is None:
            with default_executor() as pool:
                rows = ProgressExecutor(pool, bar.update).map(evaluate, tasks)
        else:
            rows = ProgressExecutor(executor, bar.update).map(evaluate, tasks)
    return pl.DataFrame(rows)
