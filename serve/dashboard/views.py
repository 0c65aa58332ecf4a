"""What each dashboard view shows, read from one of two sources with the same shapes:

- `LiveSource`: the exchange's own database (the market tables, the ledger's postings), read
  through the market driver's read connection; never a write.
- `LogSource`: a market-log DuckDB file (aex/marketlog schema: a simulation run or an
  `aex export`), so a simulated market reads like the live one (ticks stand for minutes).

Every read of a tenant's data takes the viewer's principal and keeps to its rows: a consumer
sees its own work (`Market.work` answers 404 for anyone else's), a provider its own bids,
notifications and certificates. Money is int minor units until formatted for display.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from aex.core import Money, limits
from aex.core.ledger import EXTERNAL_FUNDING_ACCOUNT
from aex.core.money import format_amount
from aex.core.reputation import TIER_THRESHOLDS, Tier
from serve.gateway.paging import PAGE_MAX
from serve.gateway.problems import FieldError, ProblemError
from serve.identity.security import Principal, PrincipalKind, now_ms
from serve.market.usecases import Market, provider_reputation
from serve.notifications.events import Delivered, notification_for
from serve.settlement.wallets import Wallets
from serve.stores.rows import many, scalars, select_list

MINUTE_MS = 60_000
MINUTES_SHOWN = 30
ROWS_SHOWN = 20
PROVIDERS_TIERED_MAX = 500
NOTIFICATIONS_SCANNED = 500
SYSTEM_ACCOUNTS_LIKE = "system:%"  # the ledger's system accounts (aex/core/ledger.py)
SCORE_COMPONENTS = ("price", "trust", "confidence", "sample", "sla", "certification")


# A sum of bigint minor units: int on SQLite, numeric (Decimal) on PostgreSQL.
_Sum = int | Decimal


# -- the live exchange's rows ----------------------------------------------------------------


class _MinuteSum(NamedTuple):
    minute: int
    amount_minor: _Sum


class _MinuteCount(NamedTuple):
    minute: int
    auctions: int


class _RevenueRow(NamedTuple):
    account_id: str
    today_minor: _Sum
    total_minor: _Sum


class _OpenWindowRow(NamedTuple):
    work_id: str
    category: str
    closes_at_ms: int
    bids: int


class _AwardRow(NamedTuple):
    work_id: str
    provider_id: str
    price_minor: int
    currency: str
    awarded_at_ms: int
    state: str


class _StatusCount(NamedTuple):
    status: str
    deliveries: int


class _DeadLetterRow(NamedTuple):
    event: str
    provider_id: str
    attempts: int
    last_error: str | None


class _ContractRow(NamedTuple):
    contract_id: str
    work_id: str
    provider_id: str
    price_minor: int
    currency: str
    state: str


class _ProviderBidRow(NamedTuple):
    bid_id: str
    work_id: str
    price_minor: int
    submitted_at_ms: int
    work_state: str
    currency: str | None
    winning_bid_id: str | None  # the bid of the work's contract, if any


class _CertificateRow(NamedTuple):
    certificate_id: str
    category: str
    capability: str
    state: str
    expires_at_ms: int


# -- a market log's rows (DuckDB; aex/marketlog/schema.py) -----------------------------------


class _RunRow(NamedTuple):
    run_id: int
    currency: str
    tick_ms: int
    source: str
    scenario: str | None


class _TickSum(NamedTuple):
    tick: int
    amount_minor: int


class _TickCount(NamedTuple):
    tick: int
    auctions: int


class _LogAwardRow(NamedTuple):
    work_id: int
    provider_id: int
    price_minor: int
    tick: int


class _TierCount(NamedTuple):
    tier: int
    providers: int


class _ScoredBidRow(NamedTuple):
    bid_id: int
    provider_id: int
    price_minor: int
    price_score: float
    trust_score: float
    confidence_score: float
    sample_score: float
    sla_score: float
    certification_score: float
    total: float
    rank: int
    is_winner: bool


class _SnapshotRow(NamedTuple):
    tick: int
    score: float
    contracts: int
    successes: int
    tier: int


class _LogProviderBidRow(NamedTuple):
    bid_id: int
    work_id: int
    price_minor: int
    tick: int
    is_winner: bool


_GMV_COLUMNS = select_list(
    _MinuteSum, minute="awarded_at_ms / 60000", amount_minor="sum(price_minor)"
)
_AUCTIONS_COLUMNS = select_list(_MinuteCount, minute="closed_at_ms / 60000", auctions="count(*)")
_FEES_COLUMNS = select_list(
    _MinuteSum, minute="j.created_at_ms / 60000", amount_minor="sum(p.amount_minor)"
)
_REVENUE_COLUMNS = select_list(
    _RevenueRow,
    account_id="p.account_id",
    today_minor="coalesce(sum(CASE WHEN j.created_at_ms >= ? THEN p.amount_minor END), 0)",
    total_minor="sum(p.amount_minor)",
)
_OPEN_WINDOW_COLUMNS = select_list(
    _OpenWindowRow,
    table="w",
    bids="(SELECT count(*) FROM bids b WHERE b.work_id = w.work_id)",
)
_PROVIDER_BID_COLUMNS = select_list(
    _ProviderBidRow,
    table="b",
    work_state="w.state",
    currency="w.currency",
    winning_bid_id="c.bid_id",
)


def money(amount_minor: int, currency: str) -> str:
    return format_amount(Money(int(amount_minor), currency))


def not_found(what: str) -> ProblemError:
    return ProblemError(
        404, "not-found", f"no such {what}", errors=(FieldError(what, "not_found"),)
    )


def next_tier(tier: str, score: float, contracts: int) -> dict[str, object] | None:
    """The next tier up and how far along the provider is (each threshold's share met)."""
    current = Tier[tier]
    for threshold in reversed(TIER_THRESHOLDS):  # SILVER first
        if threshold.tier > current:
            score_part = min(score / threshold.score_min, 1.0)
            contracts_part = min(contracts / threshold.contracts_min, 1.0)
            return {
                "tier": threshold.tier.name,
                "score_min": threshold.score_min,
                "contracts_min": threshold.contracts_min,
                "progress": round(min(score_part, contracts_part), 4),
            }
    return None


def evaluation_chart(scored: Sequence[dict[str, Any]]) -> dict[str, object]:
    """A vega-lite spec (altair's grammar, as JSON): each bid's score components stacked."""
    values = [
        {"bid": row["bid_id"], "component": name, "score": float(value)}
        for row in scored
        for name, value in row.get("components", {}).items()
    ]
    return {
        "data": {"values": values},
        "mark": "bar",
        "width": 420,
        "encoding": {
            "y": {"field": "bid", "type": "nominal", "title": "bid"},
            "x": {"field": "score", "type": "quantitative", "stack": "zero", "title": "score"},
            "color": {"field": "component", "type": "nominal"},
            "tooltip": [{"field": "component"}, {"field": "score", "format": ".3f"}],
        },
    }


def reputation_chart(points: Sequence[dict[str, Any]]) -> dict[str, object]:
    return {
        "data": {"values": list(points)},
        "mark": {"type": "line", "point": True},
        "width": 420,
        "encoding": {
            "x": {"field": "n", "type": "quantitative", "title": "outcome"},
            "y": {"field": "success_rate", "type": "quantitative", "scale": {"domain": [0, 1]}},
        },
    }


def per_minute_chart(rows: Sequence[dict[str, Any]]) -> dict[str, object]:
    values = [
        {"minute": row["minute"], "series": series, "value": float(row[series])}
        for row in rows
        for series in ("gmv", "fees")
    ]
    return {
        "data": {"values": values},
        "mark": {"type": "line", "point": True},
        "width": 420,
        "encoding": {
            "x": {"field": "minute", "type": "ordinal", "title": "minute"},
            "y": {"field": "value", "type": "quantitative", "title": "amount"},
            "color": {"field": "series", "type": "nominal"},
        },
    }


def _buckets(
    gmv: dict[int, int], fees: dict[int, int], auctions: dict[int, int], currency: str, label: Any
) -> list[dict[str, object]]:
    keys = sorted(set(gmv) | set(fees) | set(auctions))[-MINUTES_SHOWN:]
    return [
        {
            "minute": label(key),
            "gmv": money(gmv.get(key, 0), currency),
            "fees": money(fees.get(key, 0), currency),
            "auctions": auctions.get(key, 0),
        }
        for key in keys
    ]


def _minute_label(bucket: int) -> str:
    seconds = bucket * 60 % 86_400
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}"


class LiveSource:
    """The live exchange: the market tables and the ledger, read only."""

    name = "live"

    def __init__(self, market: Market, wallets: Wallets, currency: str = "USD") -> None:
        self.market = market
        self.wallets = wallets
        self.currency = currency

    def read(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        return self.market.db.read(sql, parameters)

    _read = read

    # -- operator ----------------------------------------------------------------------------

    def operator(self) -> dict[str, object]:
        now = now_ms()
        since = now - MINUTES_SHOWN * MINUTE_MS
        currency = self.currency
        gmv = {
            int(r.minute): int(r.amount_minor)
            for r in many(
                _MinuteSum,
                self._read(
                    f"SELECT {_GMV_COLUMNS} FROM contracts"  # noqa: S608
                    " WHERE awarded_at_ms >= ? AND currency = ? GROUP BY awarded_at_ms / 60000",
                    (since, currency),
                ),
            )
        }
        auctions = {
            int(r.minute): int(r.auctions)
            for r in many(
                _MinuteCount,
                self._read(
                    f"SELECT {_AUCTIONS_COLUMNS} FROM work"  # noqa: S608
                    " WHERE closed_at_ms >= ? GROUP BY closed_at_ms / 60000",
                    (since,),
                ),
            )
        }
        fees = {
            int(r.minute): int(r.amount_minor)
            for r in many(
                _MinuteSum,
                self._read(
                    f"SELECT {_FEES_COLUMNS} FROM postings p"  # noqa: S608
                    " JOIN journal_entries j ON j.entry_id = p.entry_id"
                    " WHERE p.account_id = 'system:platform_revenue' AND p.currency = ?"
                    " AND j.created_at_ms >= ? GROUP BY j.created_at_ms / 60000",
                    (currency, since),
                ),
            )
        }
        day_start = now - now % 86_400_000
        revenue = [
            {
                "stream": r.account_id.removeprefix("system:"),
                "today": money(int(r.today_minor), currency),
                "total": money(int(r.total_minor), currency),
            }
            for r in many(
                _RevenueRow,
                self._read(
                    f"SELECT {_REVENUE_COLUMNS} FROM postings p"  # noqa: S608
                    " JOIN journal_entries j ON j.entry_id = p.entry_id"
                    " WHERE p.account_id LIKE ? AND p.account_id != ? AND p.currency = ?"
                    " GROUP BY p.account_id ORDER BY p.account_id",
                    (day_start, SYSTEM_ACCOUNTS_LIKE, EXTERNAL_FUNDING_ACCOUNT, currency),
                ),
            )
        ]
        open_windows = [
            {
                "work_id": r.work_id,
                "category": r.category,
                "closes_at_ms": int(r.closes_at_ms),
                "bids": int(r.bids),
            }
            for r in many(
                _OpenWindowRow,
                self._read(
                    f"SELECT {_OPEN_WINDOW_COLUMNS}"  # noqa: S608
                    " FROM work w WHERE w.state = 'OPEN' ORDER BY w.closes_at_ms LIMIT ?",
                    (ROWS_SHOWN,),
                ),
            )
        ]
        awards = [
            {
                "work_id": r.work_id,
                "provider_id": r.provider_id,
                "price": money(r.price_minor, r.currency),
                "at_ms": int(r.awarded_at_ms),
                "state": r.state,
            }
            for r in many(
                _AwardRow,
                self._read(
                    f"SELECT {select_list(_AwardRow)}"  # noqa: S608
                    " FROM contracts ORDER BY awarded_at_ms DESC, contract_id LIMIT ?",
                    (ROWS_SHOWN,),
                ),
            )
        ]
        deliveries = {
            r.status: int(r.deliveries)
            for r in many(
                _StatusCount,
                self._read(
                    f"SELECT {select_list(_StatusCount, deliveries='count(*)')}"  # noqa: S608
                    " FROM webhook_deliveries GROUP BY status"
                ),
            )
        }
        dead = [
            {
                "event": r.event,
                "provider_id": r.provider_id,
                "attempts": int(r.attempts),
                "error": r.last_error or "",
            }
            for r in many(
                _DeadLetterRow,
                self._read(
                    f"SELECT {select_list(_DeadLetterRow)} FROM webhook_deliveries"  # noqa: S608
                    " WHERE status = 'FAILED' ORDER BY updated_at_ms DESC LIMIT ?",
                    (ROWS_SHOWN,),
                ),
            )
        ]
        per_minute = _buckets(gmv, fees, auctions, currency, _minute_label)
        return {
            "source": self.name,
            "currency": currency,
            "per_minute": per_minute,
            "per_minute_chart": per_minute_chart(per_minute),
            "revenue": revenue,
            "open_windows": open_windows,
            "recent_awards": awards,
            "tiers": self._tiers(now),
            "webhooks": {"by_status": deliveries, "dead_letters": dead},
            "now_ms": now,
        }

    def _tiers(self, now: int) -> dict[str, int]:
        counts: Counter[str] = Counter({tier.name: 0 for tier in Tier})
        params = self.market.weights.reputation
        with self.market.db.reader() as connection:
            providers = scalars(
                connection.execute(
                    "SELECT provider_id FROM providers ORDER BY provider_id LIMIT ?",
                    (PROVIDERS_TIERED_MAX,),
                )
            )
            for provider_id in providers:
                counts[provider_reputation(connection, provider_id, now, params).tier.name] += 1
        return dict(counts)

    # -- consumer ----------------------------------------------------------------------------

    def consumer(self, viewer: Principal) -> dict[str, object]:
        works = self.market.list_work(viewer, limit=ROWS_SHOWN)["data"]
        contracts = [
            {
                "contract_id": r.contract_id,
                "work_id": r.work_id,
                "provider_id": r.provider_id,
                "price": money(r.price_minor, r.currency),
                "state": r.state,
            }
            for r in many(
                _ContractRow,
                self._read(
                    f"SELECT {select_list(_ContractRow)} FROM contracts"  # noqa: S608
                    " WHERE consumer_tenant_id = ? ORDER BY awarded_at_ms DESC LIMIT ?",
                    (viewer.tenant_id, ROWS_SHOWN),
                ),
            )
        ]
        balance = self.wallets.balance(viewer, self.currency)
        return {
            "source": self.name,
            "works": [
                {
                    "work_id": w["work_id"],
                    "title": w.get("title", ""),
                    "status": w["status"],
                    "closes_at_ms": w["bid_window_closes_at_ms"],
                }
                for w in works
            ],
            "contracts": contracts,
            "balance": {"available": balance.available, "held": balance.held},
            "currency": self.currency,
        }

    def _every_bid(self, viewer: Principal, work_id: str) -> list[Any]:
        # Every bid on the work (at most limits.bids_per_work_max), oldest first, page by page.
        bids: list[Any] = []
        page: dict[str, Any] = {"has_more": True, "next_cursor": None}
        while page["has_more"] and len(bids) < limits.bids_per_work_max:
            page = self.market.bids(
                viewer, work_id, limit=PAGE_MAX, starting_after=page["next_cursor"]
            )
            bids += page["data"]
        return bids[::-1]

    def work(self, viewer: Principal, work_id: str) -> dict[str, object]:
        work = self.market.work(viewer, work_id)  # 404 unless the viewer's own
        bids = [_bid_row(b) for b in self._every_bid(viewer, work_id)]
        bodies = scalars(self._read("SELECT body FROM evaluations WHERE work_id = ?", (work_id,)))
        scored: list[dict[str, Any]] = []
        winner = None
        if bodies:
            evaluation = json.loads(bodies[0])
            scored = list(evaluation.get("bids", evaluation.get("scored", [])))
            winner = next((s["bid_id"] for s in scored if s.get("is_winner")), None)
        return {
            "source": self.name,
            "work_id": work_id,
            "title": work.get("title", ""),
            "status": work["status"],
            "closes_at_ms": work["bid_window_closes_at_ms"],
            "bids": bids,
            "scored": scored,
            "winner": winner,
            "contract_id": work.get("contract_id"),
            "chart": evaluation_chart(scored) if scored else None,
        }

    # -- provider ----------------------------------------------------------------------------

    def provider_ids(self, viewer: Principal) -> list[str]:
        if viewer.kind is PrincipalKind.PROVIDER:
            assert viewer.provider_id is not None
            return [viewer.provider_id]
        return [
            str(provider_id)
            for provider_id in scalars(
                self._read(
                    "SELECT provider_id FROM providers WHERE tenant_id = ? ORDER BY provider_id",
                    (viewer.tenant_id,),
                )
            )
        ]

    def provider(self, viewer: Principal, provider_id: str) -> dict[str, object]:
        if provider_id not in self.provider_ids(viewer):
            raise not_found("provider")
        bids = [
            {
                "bid_id": r.bid_id,
                "work_id": r.work_id,
                "price": money(r.price_minor, r.currency or self.currency),
                "submitted_at_ms": int(r.submitted_at_ms),
                "outcome": _bid_outcome(r.work_state, r.winning_bid_id, r.bid_id),
            }
            for r in many(
                _ProviderBidRow,
                self._read(
                    f"SELECT {_PROVIDER_BID_COLUMNS} FROM bids b"  # noqa: S608
                    " JOIN work w ON w.work_id = b.work_id"
                    " LEFT JOIN contracts c ON c.work_id = b.work_id"
                    " WHERE b.provider_id = ? ORDER BY b.submitted_at_ms DESC LIMIT ?",
                    (provider_id, ROWS_SHOWN),
                ),
            )
        ]
        outcome_kinds = scalars(
            self._read(
                "SELECT kind FROM outcomes WHERE provider_id = ? ORDER BY at_ms, contract_id",
                (provider_id,),
            )
        )
        reputation = self.market.reputation(provider_id)
        certificates = [
            {
                "certificate_id": r.certificate_id,
                "category": r.category,
                "capability": r.capability,
                "state": r.state,
                "expires_at_ms": int(r.expires_at_ms),
            }
            for r in many(
                _CertificateRow,
                self._read(
                    f"SELECT DISTINCT {select_list(_CertificateRow)}"  # noqa: S608
                    " FROM certificate_owners WHERE provider_id = ? ORDER BY expires_at_ms DESC"
                    " LIMIT ?",
                    (provider_id, ROWS_SHOWN),
                ),
            )
        ]
        return _provider_view(
            self.name,
            provider_id,
            bids,
            [int(kind) == 0 for kind in outcome_kinds],
            reputation,
            certificates,
            self._notifications(provider_id),
        )

    def _notifications(self, provider_id: str) -> list[dict[str, object]]:
        head = self.market.db.outbox_head()
        rows = self.market.db.outbox_after(
            max(head - NOTIFICATIONS_SCANNED, 0), NOTIFICATIONS_SCANNED
        )
        found = []
        for row in rows:
            event = Delivered.from_outbox(row)
            note = notification_for(provider_id, event)
            if note is not None:
                found.append(
                    {
                        "type": event.type,
                        "subject_id": event.subject_id,
                        "at_ms": event.occurred_at_ms,
                    }
                )
        return found[-ROWS_SHOWN:][::-1]


class Interest:
    """Which market events concern a viewer: the operator every one; a tenant or a provider
    those naming one of its ids (tenant, providers, work) as subject or payload value."""

    def __init__(self, source: LiveSource, viewer: Principal) -> None:
        self._source = source
        self._viewer = viewer
        self._everything = viewer.kind is PrincipalKind.OPERATOR
        self._ids: set[str] = set()
        if not self._everything:
            self._ids |= {viewer.tenant_id or "", *source.provider_ids(viewer)} - {""}
            if viewer.kind is PrincipalKind.TENANT:
                recent = source.market.list_work(viewer, limit=100)["data"]
                self._ids |= {str(w["work_id"]) for w in recent}

    def concerns(self, event: Delivered) -> bool:
        """May read the database (a new work's owner): call it off the event loop."""
        if self._everything:
            return True
        named = {event.subject_id, *_values(event.payload)}
        if named & self._ids:
            return True
        if event.type == "work.submitted" and self._viewer.kind is PrincipalKind.TENANT:
            rows = self._source.read(
                "SELECT 1 FROM work WHERE work_id = ? AND consumer_tenant_id = ?",
                (event.subject_id, self._viewer.tenant_id),
            )
            if rows:
                self._ids.add(event.subject_id)
                return True
        return False


def _values(payload: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for value in payload.values():
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, list):
            found |= {item for item in value if isinstance(item, str)}
    return found


def _bid_row(found: dict[str, Any]) -> dict[str, object]:
    body: dict[str, Any] = found["bid"]
    return {
        "bid_id": found["bid_id"],
        "provider_id": found["provider_id"],
        "price": str(body.get("price", "")),
        "confidence": body.get("confidence", ""),
        "submitted_at_ms": found["submitted_at_ms"],
    }


def _bid_outcome(work_state: str, winning_bid: str | None, bid_id: str) -> str:
    if winning_bid is None:
        return "pending" if work_state in ("OPEN", "EVALUATING") else "not awarded"
    return "won" if winning_bid == bid_id else "lost"


def _provider_view(
    source: str,
    provider_id: str,
    bids: list[dict[str, object]],
    successes: list[bool],
    reputation: dict[str, Any],
    certificates: list[dict[str, object]],
    notifications: list[dict[str, object]],
) -> dict[str, object]:
    points = []
    won = 0
    for n, success in enumerate(successes, start=1):
        won += success
        points.append({"n": n, "success_rate": round(won / n, 4)})
    return {
        "source": source,
        "provider_id": provider_id,
        "bids": bids,
        "reputation": reputation,
        "next_tier": next_tier(
            str(reputation["tier"]), float(reputation["score"]), int(reputation["contracts"])
        ),
        "reputation_chart": reputation_chart(points) if points else None,
        "certificates": certificates,
        "notifications": notifications,
    }


class LogSource:
    """A market-log DuckDB file (one run: the first, or `run_id`), read only."""

    def __init__(self, path: Path, run_id: int | None = None) -> None:
        import duckdb

        self.path = path
        self.connection = duckdb.connect(str(path), read_only=True)
        runs = many(
            _RunRow,
            self.connection.execute(
                f"SELECT {select_list(_RunRow)} FROM runs ORDER BY run_id"  # noqa: S608
            ),
        )
        if not runs:
            raise ValueError(f"{path}: no run in this market log")
        chosen = [r for r in runs if run_id is None or r.run_id == run_id]
        if not chosen:
            raise ValueError(f"{path}: no run {run_id}")
        run = chosen[0]
        self.run_id, self.currency, self.tick_ms = run.run_id, run.currency, run.tick_ms
        self.name = (
            f"market log {path.name} (run {self.run_id}, {run.source} {run.scenario or ''})"
        ).strip()

    def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        # A cursor per read: the pages are rendered on worker threads, a DuckDB connection
        # is used by one thread at a time.
        cursor = self.connection.cursor()
        try:
            return cursor.execute(sql, [self.run_id, *parameters]).fetchall()
        finally:
            cursor.close()

    def operator(self) -> dict[str, object]:
        gmv = {
            int(r.tick): int(r.amount_minor)
            for r in many(
                _TickSum,
                self._read(
                    f"SELECT {select_list(_TickSum, amount_minor='sum(price_minor)')}"  # noqa: S608
                    " FROM awards WHERE run_id = ? GROUP BY tick"
                ),
            )
        }
        fees = {
            int(r.tick): int(r.amount_minor)
            for r in many(
                _TickSum,
                self._read(
                    f"SELECT {select_list(_TickSum, amount_minor='sum(fee_minor)')}"  # noqa: S608
                    " FROM settlements WHERE run_id = ? GROUP BY tick"
                ),
            )
        }
        auctions = {
            int(r.tick): int(r.auctions)
            for r in many(
                _TickCount,
                self._read(
                    f"SELECT {select_list(_TickCount, auctions='count(*)')}"  # noqa: S608
                    " FROM awards WHERE run_id = ? GROUP BY tick"
                ),
            )
        }
        total_fees = scalars(
            self._read("SELECT coalesce(sum(fee_minor), 0) FROM settlements WHERE run_id = ?")
        )
        awards = [
            {
                "work_id": str(r.work_id),
                "provider_id": str(r.provider_id),
                "price": money(r.price_minor, self.currency),
                "at_ms": int(r.tick) * int(self.tick_ms),
                "state": "AWARDED",
            }
            for r in many(
                _LogAwardRow,
                self._read(
                    f"SELECT {select_list(_LogAwardRow)} FROM awards WHERE run_id = ?"  # noqa: S608
                    " ORDER BY tick DESC, work_id DESC LIMIT ?",
                    (ROWS_SHOWN,),
                ),
            )
        ]
        counts: Counter[str] = Counter({tier.name: 0 for tier in Tier})
        for r in many(
            _TierCount,
            self._read(
                f"SELECT {select_list(_TierCount, providers='count(*)')}"  # noqa: S608
                " FROM reputation WHERE run_id = ?"
                " AND tick = (SELECT max(tick) FROM reputation WHERE run_id = ?) GROUP BY tier",
                (self.run_id,),
            ),
        ):
            counts[Tier(int(r.tier)).name] += int(r.providers)
        per_minute = _buckets(gmv, fees, auctions, self.currency, lambda tick: f"tick {tick}")
        return {
            "source": self.name,
            "currency": self.currency,
            "per_minute": per_minute,
            "per_minute_chart": per_minute_chart(per_minute),
            "revenue": [
                {
                    "stream": "platform_revenue",
                    "today": "",
                    "total": money(total_fees[0], self.currency),
                }
            ],
            "open_windows": [],
            "recent_awards": awards,
            "tiers": dict(counts),
            "webhooks": {"by_status": {}, "dead_letters": []},
            "now_ms": 0,
        }

    def work(self, work_id: str) -> dict[str, object]:
        if not work_id.isdigit():
            raise not_found("work")
        rows = many(
            _ScoredBidRow,
            self._read(
                f"SELECT {select_list(_ScoredBidRow)} FROM bids"  # noqa: S608
                " WHERE run_id = ? AND work_id = ? ORDER BY rank, bid_id",
                (int(work_id),),
            ),
        )
        if not rows:
            raise not_found("work")
        scored = [
            {
                "bid_id": str(r.bid_id),
                "provider_id": str(r.provider_id),
                "components": _components(r),
                "total": float(r.total),
                "rank": int(r.rank),
                "is_winner": bool(r.is_winner),
            }
            for r in rows
        ]
        return {
            "source": self.name,
            "work_id": work_id,
            "title": f"work {work_id}",
            "status": "AWARDED" if any(s["is_winner"] for s in scored) else "CLOSED",
            "closes_at_ms": 0,
            "bids": [
                {
                    "bid_id": str(r.bid_id),
                    "provider_id": str(r.provider_id),
                    "price": money(r.price_minor, self.currency),
                    "confidence": "",
                    "submitted_at_ms": 0,
                }
                for r in rows
            ],
            "scored": scored,
            "winner": next((s["bid_id"] for s in scored if s["is_winner"]), None),
            "contract_id": None,
            "chart": evaluation_chart(scored),
        }

    def works(self) -> list[dict[str, object]]:
        work_ids = scalars(
            self._read(
                "SELECT DISTINCT work_id FROM bids WHERE run_id = ? ORDER BY work_id DESC LIMIT ?",
                (ROWS_SHOWN,),
            )
        )
        return [
            {"work_id": str(w), "title": f"work {w}", "status": "AWARDED", "closes_at_ms": 0}
            for w in work_ids
        ]

    def provider(self, provider_id: str) -> dict[str, object]:
        if not provider_id.isdigit():
            raise not_found("provider")
        pid = int(provider_id)
        snapshots = many(
            _SnapshotRow,
            self._read(
                f"SELECT {select_list(_SnapshotRow)} FROM reputation"  # noqa: S608
                " WHERE run_id = ? AND provider_id = ? ORDER BY tick",
                (pid,),
            ),
        )
        if not snapshots:
            raise not_found("provider")
        last = snapshots[-1]
        reputation = {
            "provider_id": provider_id,
            "score": round(float(last.score), 6),
            "tier": Tier(int(last.tier)).name,
            "contracts": int(last.contracts),
            "success_rate": round(int(last.successes) / max(int(last.contracts), 1), 6),
        }
        bids: list[dict[str, object]] = [
            {
                "bid_id": str(r.bid_id),
                "work_id": str(r.work_id),
                "price": money(r.price_minor, self.currency),
                "submitted_at_ms": int(r.tick) * int(self.tick_ms),
                "outcome": "won" if r.is_winner else "lost",
            }
            for r in many(
                _LogProviderBidRow,
                self._read(
                    f"SELECT {select_list(_LogProviderBidRow)} FROM bids"  # noqa: S608
                    " WHERE run_id = ? AND provider_id = ? ORDER BY tick DESC LIMIT ?",
                    (pid, ROWS_SHOWN),
                ),
            )
        ]
        view = _provider_view(self.name, provider_id, bids, [], reputation, [], [])
        points = [
            {
                "n": int(r.tick),
                "success_rate": round(int(r.successes) / max(int(r.contracts), 1), 4),
            }
            for r in snapshots
        ]
        view["reputation_chart"] = reputation_chart(points)
        return view


def _components(row: _ScoredBidRow) -> dict[str, float]:
    # The score components in SCORE_COMPONENTS' order, each from its own column.
    scores = (
        row.price_score,
        row.trust_score,
        row.confidence_score,
        row.sample_score,
        row.sla_score,
        row.certification_score,
    )
    return dict(zip(SCORE_COMPONENTS, (float(v) for v in scores), strict=True))
