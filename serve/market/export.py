"""`aex export`: the live exchange's market log, in the simulator's DuckDB schema.

Reads the exchange's SQLite file read-only (a running server is fine: WAL readers see the last
commit), or its PostgreSQL schema in one read-only REPEATABLE READ snapshot, and appends ONE
run with source 'exchange' to a market-log database
(aex/marketlog/schema.py): providers, work, bids with their six score components, total, rank,
winner flag and reject-reason code (from the stored evaluations, so only closed windows), awards,
outcomes, settlements and one reputation snapshot per provider at export time. The schema's ids
are BIGINT: the exchange's string ids are numbered densely (in creation order) and the mapping is
written to the extra table `exchange_ids (run_id, kind, int_id, exchange_id)`. Ticks are seconds
since the first work (tick_ms = 1000); columns that only a simulation knows (slot, strategy, true
quality, costs, `large`) are NULL.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa

from aex import marketlog
from aex.core import Money, parse_money
from aex.core.fees import PLATFORM_FEE_BPS
from aex.core.payment_rule import FIRST_SCORE
from aex.core.reasons import BidRejectReason
from aex.core.reputation import OutcomeKind
from aex.core.scoring import weights_to_json
from serve.market.evaluation import DEFAULT_WEIGHTS, NamedWeights
from serve.market.usecases import provider_reputation
from serve.stores.market_db import DATABASE_FILE
from serve.stores.rows import many, scalar, scalars, select_list

TICK_MS = 1_000
_SUCCESSFUL = (OutcomeKind.SUCCESS, OutcomeKind.LATE, OutcomeKind.DISPUTE_WON)
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


class _Ids:
    """Dense BIGINT ids for the exchange's string ids, per kind, in first-seen order."""

    def __init__(self) -> None:
        self.by_kind: dict[str, dict[str, int]] = {}

    def __call__(self, kind: str, exchange_id: str) -> int:
        ids = self.by_kind.setdefault(kind, {})
        return ids.setdefault(exchange_id, len(ids) + 1)

    def rows(self, run_id: int) -> list[tuple[Any, ...]]:
        return [
            (run_id, kind, int_id, exchange_id)
            for kind, ids in sorted(self.by_kind.items())
            for exchange_id, int_id in ids.items()
        ]


def export_market_log(
    data_dir: Path, target: Path, *, now_ms: int, weights: NamedWeights = DEFAULT_WEIGHTS
) -> dict[str, int]:
    """Appends the exchange's market as one run to `target`; returns rows written per table.

    `weights` are recorded on the run: the ones the exchange scored with (`aex serve --weights`).
    """
    source = sqlite3.connect(f"file:{data_dir / DATABASE_FILE}?mode=ro", uri=True)
    try:
        return export_from(source, target, now_ms=now_ms, weights=weights, origin=str(data_dir))
    finally:
        source.close()


def export_from_postgres(
    url: str, schema: str, target: Path, *, now_ms: int, weights: NamedWeights = DEFAULT_WEIGHTS
) -> dict[str, int]:
    """The same export from the scale-out database: one REPEATABLE READ snapshot, read-only."""
    import psycopg

    from serve.stores.market_db import PgConnection

    options = f"-c search_path={schema}"
    with psycopg.connect(url, options=options) as raw:
        raw.read_only = True
        raw.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        source = PgConnection(raw)
        return export_from(source, target, now_ms=now_ms, weights=weights, origin=schema)


def _rules_document(weights: NamedWeights) -> dict[str, object]:
    # The run's rules as recorded: the weights document, plus the payment rule when it is not
    # the spec's first score (so a default exchange's export is unchanged).
    document = weights_to_json(weights.weights, name=weights.name)
    if weights.payment_rule is not FIRST_SCORE:
        document["payment_rule"] = weights.payment_rule.value
    return document


def export_from(
    source: Any, target: Path, *, now_ms: int, weights: NamedWeights, origin: str
) -> dict[str, int]:
    con = marketlog.connect(target)
    try:
        run_id = marketlog.next_run_id(con)
        ids = _Ids()
        t0 = _first_ms(source)
        tables = _tables(source, ids, t0, now_ms)
        ticks = max(1, (now_ms - t0) // TICK_MS + 1)
        con.execute(
            "INSERT INTO runs VALUES"
            " (?, 'exchange', 'live', NULL, 0, ?, ?, ?, ?, ?, 'all', ?, ?, ?)",
            [
                run_id,
                json.dumps(_rules_document(weights)),
                PLATFORM_FEE_BPS,
                _currency(source),
                ticks,
                TICK_MS,
                json.dumps({"source": origin, "exported_at_ms": now_ms}),
                datetime.now(UTC).replace(tzinfo=None),
                marketlog.code_version(),
            ],
        )
        written = {}
        for name, rows in tables.items():
            _append(con, name, [(run_id, *row) for row in rows])
            written[name] = len(rows)
        con.execute(
            "CREATE TABLE IF NOT EXISTS exchange_ids (run_id BIGINT, kind VARCHAR,"
            " int_id BIGINT, exchange_id VARCHAR)"
        )
        id_rows = ids.rows(run_id)
        if id_rows:
            con.executemany("INSERT INTO exchange_ids VALUES (?, ?, ?, ?)", id_rows)
        written["runs"] = 1
        return written
    finally:
        con.close()


def _first_ms(source: Any) -> int:
    first = scalar(source.execute("SELECT min(opened_at_ms) FROM work"))
    return 0 if first is None else int(first)


def _currency(source: Any) -> str:
    most = scalar(
        source.execute("SELECT currency FROM work GROUP BY currency ORDER BY count(*) DESC LIMIT 1")
    )
    return "USD" if most is None else str(most)


def _tick(at_ms: int, t0: int) -> int:
    return max(0, (at_ms - t0) // TICK_MS)


# The exchange's rows read, one NamedTuple per query (serve/stores/rows.py): by column name.
class _StoredProvider(NamedTuple):
    provider_id: str
    created_at_ms: int


class _StoredWork(NamedTuple):
    work_id: str
    opened_at_ms: int
    consumer_tenant_id: str
    category: str
    spec: str
    budget_max_minor: int
    currency: str


class _StoredOutcome(NamedTuple):
    work_id: str
    provider_id: str
    at_ms: int
    kind: int


class _StoredSettlement(NamedTuple):
    work_id: str
    provider_id: str
    settled_at_ms: int
    price_minor: int
    fee_minor: int


class _StoredEvaluation(NamedTuple):
    work_id: str
    body: str  # JSON: the scored bids


class _StoredAward(NamedTuple):
    work_id: str
    bid_id: str
    provider_id: str
    awarded_at_ms: int
    price_minor: int


_PROVIDERS_SELECT = (
    f"SELECT {select_list(_StoredProvider)} FROM providers"  # noqa: S608 - fixed text
    " ORDER BY created_at_ms, provider_id"
)
_WORK_SELECT = (
    f"SELECT {select_list(_StoredWork)} FROM work"  # noqa: S608 - fixed text
    " ORDER BY opened_at_ms, work_id"
)
_OUTCOMES = select_list(_StoredOutcome, table="o", work_id="c.work_id")
_OUTCOMES_SELECT = (
    f"SELECT {_OUTCOMES}"  # noqa: S608 - fixed text
    " FROM outcomes o JOIN contracts c USING (contract_id) ORDER BY o.at_ms"
)
_SETTLEMENTS_SELECT = (
    f"SELECT {select_list(_StoredSettlement)} FROM contracts"  # noqa: S608 - fixed text
    " WHERE state IN ('SETTLED', 'DISPUTED') ORDER BY settled_at_ms"
)
_AWARDS_SELECT = (
    f"SELECT {select_list(_StoredAward)} FROM contracts"  # noqa: S608 - fixed text
    " ORDER BY awarded_at_ms"
)


def _tables(source: Any, ids: _Ids, t0: int, now_ms: int) -> dict[str, list[tuple[Any, ...]]]:
    providers = many(_StoredProvider, source.execute(_PROVIDERS_SELECT))
    return {
        "providers": [_provider_row(source, ids, p, t0) for p in providers],
        "work": [
            (
                ids("work", w.work_id),
                _tick(w.opened_at_ms, t0),
                ids("tenant", w.consumer_tenant_id),
                ids("category", w.category),
                _budget_min_minor(w.spec, w.currency),
                w.budget_max_minor,
                None,
            )
            for w in many(_StoredWork, source.execute(_WORK_SELECT))
        ],
        "bids": list(_bid_rows(source, ids, t0)),
        "awards": list(_award_rows(source, ids, t0)),
        "outcomes": [
            (
                ids("work", o.work_id),
                ids("provider", o.provider_id),
                _tick(o.at_ms, t0),
                o.kind in _SUCCESSFUL,
                None,
            )
            for o in many(_StoredOutcome, source.execute(_OUTCOMES_SELECT))
        ],
        "settlements": [
            (
                ids("work", s.work_id),
                ids("provider", s.provider_id),
                _tick(s.settled_at_ms, t0),
                s.price_minor,
                s.fee_minor,
                s.price_minor - s.fee_minor,
            )
            for s in many(_StoredSettlement, source.execute(_SETTLEMENTS_SELECT))
        ],
        "reputation": [
            _reputation_row(source, ids, p.provider_id, _tick(now_ms, t0), now_ms)
            for p in providers
        ],
    }


def _budget_min_minor(spec: str, currency: str) -> int:
    money = parse_money(json.loads(spec)["budget"]["min"], currency)
    assert isinstance(money, Money), "a stored spec's budget parses"
    return money.amount_minor


def _provider_row(source: Any, ids: _Ids, provider: _StoredProvider, t0: int) -> tuple[Any, ...]:
    provider_id, created_ms = provider.provider_id, provider.created_at_ms
    confidence = scalar(
        source.execute("SELECT avg(confidence) FROM bids WHERE provider_id = ?", (provider_id,))
    )
    certified = scalar(
        source.execute(
            "SELECT count(*) FROM certificate_owners WHERE provider_id = ? AND state = 'ACTIVE'",
            (provider_id,),
        )
    )
    category = scalar(
        source.execute("SELECT category FROM providers WHERE provider_id = ?", (provider_id,))
    )
    return (
        ids("provider", provider_id),
        None,
        None,
        None,
        None,
        confidence,
        certified > 0,
        ids("category", category),
        _tick(created_ms, t0),
    )


class _StoredBid(NamedTuple):
    bid_id: str
    price_minor: int
    submitted_at_ms: int


def _bid_rows(source: Any, ids: _Ids, t0: int) -> Iterable[tuple[Any, ...]]:
    found = source.execute(f"SELECT {select_list(_StoredBid)} FROM bids")  # noqa: S608 - fixed text
    stored = {row.bid_id: (row.price_minor, row.submitted_at_ms) for row in many(_StoredBid, found)}
    evaluations = many(
        _StoredEvaluation,
        source.execute(
            f"SELECT {select_list(_StoredEvaluation)} FROM evaluations"  # noqa: S608 - fixed text
            " ORDER BY evaluated_at_ms, work_id"
        ),
    )
    for evaluation in evaluations:
        work_id = evaluation.work_id
        for scored in json.loads(evaluation.body)["bids"]:
            price_minor, submitted_ms = stored[scored["bid_id"]]
            components = scored["components"]
            reason = scored["reject_reason"]
            yield (
                ids("work", work_id),
                ids("bid", scored["bid_id"]),
                ids("provider", scored["provider_id"]),
                _tick(submitted_ms, t0),
                price_minor,
                submitted_ms,
                components["price"],
                components["trust"],
                components["confidence"],
                components["sample_work"],
                components["sla"],
                components["certification"],
                scored["total"],
                scored["rank"],
                scored["is_winner"],
                0 if reason is None else BidRejectReason(reason).code,
            )


def _award_rows(source: Any, ids: _Ids, t0: int) -> Iterable[tuple[Any, ...]]:
    totals: dict[str, float] = {}
    for body in scalars(source.execute("SELECT body FROM evaluations")):
        for scored in json.loads(body)["bids"]:
            if scored["is_winner"]:
                totals[scored["bid_id"]] = scored["total"]
    for award in many(_StoredAward, source.execute(_AWARDS_SELECT)):
        yield (
            ids("work", award.work_id),
            ids("bid", award.bid_id),
            ids("provider", award.provider_id),
            _tick(award.awarded_at_ms, t0),
            award.price_minor,
            totals.get(award.bid_id),
        )


def _reputation_row(
    source: Any, ids: _Ids, provider_id: str, tick: int, now_ms: int
) -> tuple[Any, ...]:
    found = provider_reputation(source, provider_id, now_ms)
    successes = scalar(
        source.execute(
            "SELECT count(*) FROM outcomes WHERE provider_id = ? AND kind IN (?, ?, ?)",
            (provider_id, *(int(k) for k in _SUCCESSFUL)),
        )
    )
    return (
        tick,
        ids("provider", provider_id),
        found.score,
        found.contracts,
        successes,
        int(found.tier),
    )


def _append(con: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    columns = marketlog.TABLES[table]
    arrays = [
        pa.array([row[i] for row in rows], type=_ARROW_TYPES[kind])
        for i, (_, kind) in enumerate(columns)
    ]
    batch = pa.Table.from_arrays(arrays, names=[name for name, _ in columns])
    con.register("export_batch", batch)
    con.execute(f"INSERT INTO {table} SELECT * FROM export_batch")  # noqa: S608 - schema name
    con.unregister("export_batch")
