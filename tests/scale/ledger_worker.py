"""A separate OS process driving the PostgreSQL ledger (for tests/scale/test_postgres_ledger.py).

Runs each phase's operations on a thread pool, waits at a barrier shared with the other
process between phases, and reports every outcome: "applied", "replayed" or the reason.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

THREADS = 4


def run(url: str, schema: str, phases: list[list[Any]], barrier: Any, results: Any) -> None:
    from aex.core import Rejected
    from serve.settlement.postgres_ledger import PostgresLedger
    from serve.stores.postgres import PostgresStore

    store = PostgresStore(url, schema=schema, pool_min=1, pool_max=THREADS)
    ledger = PostgresLedger(store)

    def one(operation: Any) -> tuple[str, str]:
        result = ledger.apply(operation)
        if isinstance(result, Rejected):
            return operation.operation_id, result.reason.value
        return operation.operation_id, "replayed" if result.replayed else "applied"

    outcomes: list[tuple[str, str]] = []
    with ThreadPoolExecutor(THREADS) as pool:
        for phase in phases:
            barrier.wait(timeout=60)
            outcomes += list(pool.map(one, phase))
    store.close()
    results.put(outcomes)
