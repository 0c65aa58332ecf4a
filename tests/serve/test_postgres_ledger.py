"""The PostgreSQL ledger's driver (serve/settlement/postgres_ledger.py), beyond the contract
both backends pass: values are bound, never spliced (quotes, separators and placeholders in ids
are data); a refusal or a replay writes nothing; a lost race to open a row is rolled back and
retried; the market's in-transaction path and the standalone one write the same ledger."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from aex.core import Money, split_fee
from aex.core.ledger import Applied, Capture, Deposit, Hold, Withdraw
from aex.core.reasons import LedgerRejectReason, Rejected
from serve.settlement import postgres_ledger
from serve.settlement.postgres_ledger import PostgresLedger
from serve.stores.postgres import PostgresStore
from tests.conftest import TEST_DATABASE_URL, fresh_schema_name

pytestmark = pytest.mark.services

# Quotes, a statement separator, a comment, a dollar quote and both placeholder styles.
HOSTILE = "o'brien\\\"; DROP TABLE wallets; -- $1 $$ %s %(x)s"


@pytest.fixture
def store() -> Iterator[PostgresStore]:
    # One connection: every operation reuses the session whose state the test inspects.
    store = PostgresStore(TEST_DATABASE_URL, schema=fresh_schema_name(), pool_min=1, pool_max=1)
    yield store
    store.drop_schema()


def usd(amount_minor: int) -> Money:
    return Money(amount_minor, "USD")


def test_ids_with_quotes_and_placeholders_are_bound_as_values(store: PostgresStore) -> None:
    ledger = PostgresLedger(store)
    wallet_id = f"tenant:{HOSTILE}:USD"
    deposit = Deposit(f"dep:{HOSTILE}", wallet_id, usd(700))

    assert isinstance(ledger.apply(deposit), Applied)
    replay = ledger.apply(deposit)

    assert isinstance(replay, Applied)
    assert replay.replayed
    wallet = ledger.wallet(wallet_id)
    assert wallet is not None
    assert wallet.available_minor == 700
    assert [row.operation_id for row in ledger.history(wallet_id, limit=5)] == [
        deposit.operation_id
    ]
    assert ledger.totals_by_currency() == {"USD": 0}


def test_a_refusal_and_a_replay_write_nothing(
    store: PostgresStore,
) -> None:
    ledger = PostgresLedger(store)
    assert isinstance(ledger.apply(Deposit("fund", "tenant:a:USD", usd(100))), Applied)

    refused = ledger.apply(Withdraw("too-much", "tenant:a:USD", usd(101)))
    assert isinstance(refused, Rejected)
    assert refused.reason is LedgerRejectReason.INSUFFICIENT_FUNDS
    replayed = ledger.apply(Deposit("fund", "tenant:a:USD", usd(100)))
    assert isinstance(replayed, Applied)
    assert replayed.replayed

    with store.read() as connection:
        entries = connection.execute("SELECT count(*) FROM journal_entries").fetchone()
    assert entries == (1,)
    wallet = ledger.wallet("tenant:a:USD")
    assert wallet is not None
    assert wallet.available_minor == 100


def test_a_lost_race_to_open_a_wallet_is_rolled_back_and_retried(store: PostgresStore) -> None:
    ledger = PostgresLedger(store)
    # Another session opens the wallet and holds its transaction open: the ledger's read does
    # not see the row, plans to open it, and its INSERT waits on the other's key.
    with psycopg.connect(TEST_DATABASE_URL, options=f"-c search_path={store.schema}") as rival:
        rival.execute(
            "INSERT INTO wallets (wallet_id, currency, available_minor, held_minor)"
            " VALUES ('tenant:race:USD', 'USD', 0, 0)"
        )
        with store.pool.connection() as connection:
            ledger_pid = connection.info.backend_pid
        results: list[object] = []
        worker = threading.Thread(
            target=lambda: results.append(
                ledger.apply(Deposit("race", "tenant:race:USD", usd(250)))
            )
        )
        worker.start()
        deadline_s = time.monotonic() + 10
        while not _waits_on_a_lock(ledger_pid) and time.monotonic() < deadline_s:
            time.sleep(0.02)
        assert _waits_on_a_lock(ledger_pid), "the ledger's INSERT never waited on the rival's row"
        rival.commit()
    worker.join(timeout=10)

    assert len(results) == 1
    assert isinstance(results[0], Applied)
    assert ledger.retries == 1
    wallet = ledger.wallet("tenant:race:USD")
    assert wallet is not None
    assert wallet.available_minor == 250
    assert ledger.wallet_mismatches() == []
    assert ledger.totals_by_currency() == {"USD": 0}


def _waits_on_a_lock(pid: int) -> bool:
    # Its own session: a transaction sees one snapshot of pg_stat_activity.
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as watcher:
        row = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid = %s",
            (pid,),
        ).fetchone()
    return row is not None and row[0] > 0


def test_the_in_transaction_path_writes_what_the_standalone_one_does(
    store: PostgresStore,
) -> None:
    # The market's writes run the ledger inside their own transaction.
    ledger = PostgresLedger(store)
    with store.transaction() as tx:
        result = postgres_ledger.apply_in_transaction(tx, Deposit("fund", "tenant:a:USD", usd(90)))
        assert isinstance(result, Applied)
        assert isinstance(
            postgres_ledger.apply_in_transaction(tx, Hold("hold", "h1", "tenant:a:USD", usd(30))),
            Applied,
        )
    assert isinstance(ledger.apply(Capture("cap", "h1", "tenant:b:USD", 1_500)), Applied)
    payee = ledger.wallet("tenant:b:USD")
    fee_minor, payout_minor = split_fee(30, fee_bps=1_500)
    assert payee is not None
    assert payee.available_minor == payout_minor == 30 - fee_minor
    assert ledger.totals_by_currency() == {"USD": 0}
    assert ledger.wallet_mismatches() == []
