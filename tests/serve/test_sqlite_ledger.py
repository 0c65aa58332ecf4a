"""The SQLite ledger's group commit (serve/settlement/sqlite_ledger.py `submit`): a caller that
goes away while its operation waits has it not applied, a batch that cannot begin fails its
callers and not the writer, and the operations after either go through."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from aex.core import Money
from aex.core.ledger import Applied, Deposit
from serve.settlement.sqlite_ledger import SqliteLedger
from serve.stores.sqlite import SqliteStore
from tests.conftest import write_lock_held

WALLET = "tenant:a:USD"


def _deposit(operation_id: str, amount_minor: int) -> Deposit:
    return Deposit(operation_id, WALLET, Money(amount_minor, "USD"))


def _available(ledger: SqliteLedger) -> int:
    wallet = ledger.wallet(WALLET)
    assert wallet is not None
    return wallet.available_minor


def test_an_operation_whose_caller_went_away_while_it_waited_is_not_applied(
    tmp_path: Path,
) -> None:
    path = tmp_path / "aex.sqlite3"
    ledger = SqliteLedger(SqliteStore(path, synchronous="NORMAL"))

    async def scenario() -> None:
        assert isinstance(await ledger.submit(_deposit("d0", 1)), Applied)
        with write_lock_held(path):  # the writer's next BEGIN waits for this lock
            first = asyncio.ensure_future(ledger.submit(_deposit("d1", 10)))
            await asyncio.sleep(0.2)  # taken into a batch, waiting in BEGIN
            second = asyncio.ensure_future(ledger.submit(_deposit("d2", 100)))
            await asyncio.sleep(0.05)
            second.cancel()  # its caller timed out while it was queued
            first.cancel()  # its caller goes too, but it was taken: it commits
        later = await asyncio.wait_for(ledger.submit(_deposit("d3", 1_000)), timeout=10)
        assert isinstance(later, Applied)

    asyncio.run(scenario())
    assert _available(ledger) == 1 + 10 + 1_000
    assert ledger.totals_by_currency() == {"USD": 0}


def test_a_batch_that_cannot_begin_fails_its_callers_and_the_next_one_goes_through(
    tmp_path: Path,
) -> None:
    path = tmp_path / "aex.sqlite3"
    ledger = SqliteLedger(SqliteStore(path, synchronous="NORMAL", busy_timeout_s=0.2))

    async def scenario() -> None:
        assert isinstance(await ledger.submit(_deposit("d0", 1)), Applied)
        with (  # the lock held past the ledger's busy timeout
            write_lock_held(path),
            pytest.raises(sqlite3.OperationalError, match="locked"),
        ):
            await asyncio.wait_for(ledger.submit(_deposit("d1", 10)), timeout=10)
        again = await asyncio.wait_for(ledger.submit(_deposit("d1", 10)), timeout=10)
        assert isinstance(again, Applied)
        assert not again.replayed  # the refused one wrote nothing

    asyncio.run(scenario())
    assert _available(ledger) == 11
