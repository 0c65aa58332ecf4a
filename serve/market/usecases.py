"""The market's use cases: work, bids, window close and award, contracts, settlement, disputes.

Every change is one write transaction of the market's driver (serve/stores/market_db.py: the
SQLite group-commit writer, or a PostgreSQL transaction): load → call the core (aex.core.market
/ lifecycle / criteria / ledger / reputation) → write the rows, the ledger entries (through the
ledger driver's own write path, inside this transaction) and the outbox events → COMMIT. So a
work's budget hold is placed with its insert, an award moves the escrow with the contract's
insert, a settlement captures the escrow with the state change, and the event that announces
each change commits with it or not at all. The SQL here is the dialect both backends share.

Exactly once: the window close, the award and the settlement are guarded by the lifecycle's
transition read inside the write transaction, with the row it transitions locked (`tx.for_update`
on PostgreSQL; SQLite serialises writers): the second closer or the second completion call
sees the new state and is refused, 409 or a no-op. A closer skips a window another process is
closing (`tx.skip_locked`). Every ledger operation id is derived from the work or contract id,
so even a replay moves no money twice.

Access: work, its bids and its evaluation are the consumer tenant's; a contract is visible to
its consumer and its provider (the provider's key or its owner tenant); everything else answers
404 exactly like a missing id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import msgspec

from aex.core import Money, Rejected, format_amount, limits
from aex.core.certs import Signer
from aex.core.criteria import evaluate_criteria
from aex.core.events import Event, EventType, event_to_json
from aex.core.fees import PLATFORM_FEE_BPS, split_fee
from aex.core.ledger import (
    PLATFORM_REVENUE_ACCOUNT,
    Applied,
    Hold,
    Operation,
    Release,
)
from aex.core.lifecycle import (
    ContractEventKind,
    ContractState,
    WorkEventKind,
    WorkState,
    transition,
)
from aex.core.market import (
    DISPUTE_WINDOW_MS,
    ContractOutcomeFacts,
    WorkSpec,
    bid_window_closes_at_ms,
    check_bid_admission,
    check_dispute,
    completion_event,
    outcome_of,
    parse_bid,
    parse_completion,
    parse_dispute_reason,
    parse_progress,
    parse_resolution,
    parse_work_spec,
    pay_out_operation,
    payout_due,
    refund_operation,
    work_reserve,
)
from aex.core.matching import subscription_matches
from aex.core.notifications import provider_notification, recipient_parts
from aex.core.payment_rule import FIRST_SCORE
from aex.core.plans import Plan, check_concurrent_tasks_quota
from aex.core.reputation import (
    DEFAULT_REPUTATION_PARAMS,
    Outcomes,
    Reputation,
    ReputationParams,
    reputation_of,
)
from serve.credentials.mandates import (
    award_refusal,
    cover_work,
    is_id,
    issue_receipt,
    mandate_of_work,
    receipt_ids,
)
from serve.gateway.paging import PAGE_DEFAULT, PAGE_MAX, page_size
from serve.gateway.problems import FieldError, ProblemError, listed, problem_for_rejected
from serve.gateway.schemas import decode_json
from serve.identity.security import Principal, PrincipalKind, new_id, now_ms
from serve.market.evaluation import DEFAULT_WEIGHTS, BidRow, NamedWeights, WorkTerms, evaluate
from serve.settlement.wallets import wallet_id
from serve.stores.market_db import MarketDb, OutboxRow, Session, SqlConnection
from serve.stores.pages import KEYSET_PAGE_ROWS_MAX, Keyset, keyset_page, page_answer
from serve.stores.rows import many, one, scalar, scalars, select_list
from serve.telemetry.tracing import current_traceparent, traced

T = TypeVar("T")
R = TypeVar("R")
# Every list is a keyset page of at most PAGE_MAX rows (serve/gateway/paging.py; GET /v1/work,
# /v1/work/{id}/bids, /v1/work/open, /v1/bids, /v1/contracts, /v1/transactions,
# /v1/notifications/deliveries, /v1/invoices): one page stays a few hundred KB at most, and a
# cursor walks the rest.
# GET /v1/work/open: open work rows read (those whose category matches, by the index) to fill
# one page after the capability check; a page may come back short with has_more and a cursor.
OPEN_WORK_SCANNED_MAX = 1_000
assert PAGE_DEFAULT <= PAGE_MAX <= OPEN_WORK_SCANNED_MAX
DUE_WINDOWS_PER_POLL_MAX = 100
DUE_PAYOUTS_PER_POLL_MAX = 100
_ENCODER = msgspec.json.Encoder(decimal_format="number")


def decode_body(raw: bytes) -> object:
    """JSON with every non-integer number as Decimal: money is never read through a float;
    nesting bounded (serve.gateway.schemas.decode_json, the one decoder of free-form bodies)."""
    return decode_json(raw)


def to_json_text(value: object) -> str:
    return _ENCODER.encode(value).decode()


def _not_found(what: str) -> ProblemError:
    return ProblemError(
        404, "not-found", f"no such {what}", errors=(FieldError(what, "not_found"),)
    )


def _money(amount_minor: int, currency: str) -> str:
    return format_amount(Money(amount_minor, currency))


class _Refused(Exception):
    """Raised inside a transaction to roll it back and answer with a problem."""

    def __init__(self, problem: ProblemError) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass
class Tx:
    """One write as the market's rules see it: the driver's session and the clock reading."""

    session: Session
    now_ms: int
    for_update: str  # " FOR UPDATE" on PostgreSQL, "" on SQLite (writers are serialised)
    skip_locked: str
    reputation: ReputationParams = DEFAULT_REPUTATION_PARAMS
    # The CA's active signer, for AP2 receipts (serve/credentials/mandates.py); the app sets it.
    receipt_signer: Callable[[], Signer] | None = None
    # Timings taken in this write (name, seconds), reported after its COMMIT (`Committed`).
    measures: list[Measure] = field(default_factory=list)

    @property
    def connection(self) -> SqlConnection:
        return self.session.connection

    def execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> Any:
        return self.session.connection.execute(sql, parameters)

    def ledger(self, operation: Operation) -> Applied:
        result = self.session.apply_ledger(operation)
        if isinstance(result, Rejected):
            raise _Refused(problem_for_rejected(result))
        return result

    def emit(self, event_type: EventType, subject_id: str, payload: Mapping[str, object]) -> None:
        plain = json.loads(to_json_text(payload))  # Decimals in free-form JSON become numbers
        event = Event(new_id("evt"), event_type, subject_id, self.now_ms, plain)
        self.session.outbox.append(
            OutboxRow(
                event.event_id,
                event.type.value,
                event.subject_id,
                event.occurred_at_ms,
                to_json_text(event_to_json(event)["payload"]),
                current_traceparent(),  # the write's trace goes on to NATS and the webhooks
            )
        )

    def measure(self, name: str, seconds: float) -> None:
        self.measures.append((name, seconds))


# A timing taken in a market write: "window_close_lag" (bid window deadline to its close),
# "settlement_latency" (award to settlement), in seconds.
Measure = tuple[str, float]
# Told of every committed write, in the process that committed it: its outbox rows and timings.
Committed = Callable[[Sequence[OutboxRow], Sequence[Measure]], None]


class Market:
    def __init__(
        self,
        db: MarketDb,
        *,
        weights: NamedWeights = DEFAULT_WEIGHTS,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        # `clock` reads the time of each write (milliseconds since the epoch); a replay (the
        # simulator's conformance test) passes its own.
        self.db = db
        self.weights = weights
        self.clock = clock
        self.receipt_signer: Callable[[], Signer] | None = None
        # the metrics (serve/notifications/events.py MarketMetrics)
        self.committed: list[Committed] = []

    def write(self, write: Callable[[Tx], T]) -> T:
        """Runs `write` in one transaction of the market's driver (serve/stores/market_db.py)
        and returns after its COMMIT; a refusal raised inside rolls it back as a problem."""
        last: list[Tx] = []
        try:
            result = self.db.run(self._bind(write, last))
        except _Refused as refused:
            raise refused.problem from None
        self._tell_committed(last)
        return result

    async def write_async(self, write: Callable[[Tx], T]) -> T:
        last: list[Tx] = []
        try:
            result = await self.db.run_async(self._bind(write, last))
        except _Refused as refused:
            raise refused.problem from None
        self._tell_committed(last)
        return result

    def _bind(self, write: Callable[[Tx], T], last: list[Tx]) -> Callable[[Session], T]:
        db, clock, reputation = self.db, self.clock, self.weights.reputation
        signer = self.receipt_signer

        def run(session: Session) -> T:
            tx = Tx(session, clock(), db.for_update, db.skip_locked, reputation, signer)
            last[:] = [tx]  # a driver that retries the transaction: the committed one is last
            return write(tx)

        return run

    def _tell_committed(self, last: list[Tx]) -> None:
        if not last or not self.committed:
            return
        tx = last[0]
        for listener in self.committed:
            listener(tx.session.outbox, tx.measures)

    def _read(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        return self.db.read(sql, parameters)

    def _read_one(self, row: type[R], sql: str, parameters: tuple[Any, ...] = ()) -> R | None:
        return one(row, next(iter(self._read(sql, parameters)), None))

    def _read_scalar(self, sql: str, parameters: tuple[Any, ...] = ()) -> Any:
        return scalar(next(iter(self._read(sql, parameters)), None))

    # -- work -------------------------------------------------------------------------------

    @traced("market.submit_work")
    def submit_work(self, caller: Principal, body: object) -> dict[str, object]:
        consumer = _tenant_of(caller)
        body, mandate_id = _mandate_field(body)
        spec = parse_work_spec(body)
        if isinstance(spec, Rejected):
            raise problem_for_rejected(spec)
        work_id = new_id("work")
        hold_id = f"work-{work_id}"
        # Who is notified: read through the category index before the write transaction opens
        # (the writer is never held by matching).
        with self.db.reader() as connection:
            recipients = subscribed_providers(connection, spec.category, spec.capability)

        def write(tx: Tx) -> Any:
            _check_concurrent_tasks(tx, consumer)
            if mandate_id is not None:  # AP2: refused beyond the mandate, nothing written
                cover_work(
                    tx,
                    caller,
                    mandate_id,
                    work_id=work_id,
                    amount=spec.budget_max,
                    category=spec.category,
                )
            tx.ledger(
                Hold(
                    f"hold-{hold_id}",
                    hold_id,
                    wallet_id(consumer, spec.currency),
                    work_reserve(spec),
                )
            )
            closes_ms = bid_window_closes_at_ms(tx.now_ms, spec)
            tx.execute(
                "INSERT INTO work VALUES (?, ?, ?, ?, ?, ?, ?, 'OPEN', ?, ?, ?, NULL, NULL)",
                (
                    work_id,
                    consumer,
                    to_json_text(spec.to_json()),
                    spec.category,
                    spec.capability,
                    spec.currency,
                    spec.budget_max.amount_minor,
                    tx.now_ms,
                    closes_ms,
                    hold_id,
                ),
            )
            # One event per slice of recipients (one event below the limit): no event
            # outgrows its payload bound however many subscribers a category has.
            parts = recipient_parts(recipients)
            for part, named in enumerate(parts):
                payload: dict[str, object] = {
                    "work_id": work_id,
                    "work": spec.to_json(),
                    "bid_window_closes_at_ms": closes_ms,
                    "recipients": named,
                }
                if len(parts) > 1:
                    payload |= {"recipients_part": part, "recipients_parts": len(parts)}
                tx.emit(EventType.WORK_SUBMITTED, work_id, payload)

        self.write(write)
        return self.work(caller, work_id)

    def work(self, caller: Principal, work_id: str) -> dict[str, object]:
        row = self._read_one(_WorkRow, _WORK_SELECT + " WHERE work_id = ?", (work_id,))
        if row is None or row.consumer_tenant_id != _tenant_of(caller):
            raise _not_found("work")
        return _work_view(row)

    def list_work(
        self,
        caller: Principal,
        *,
        limit: int,
        starting_after: str | None = None,
        status: WorkState | None = None,
        category: str | None = None,
        created_after_ms: int | None = None,
        created_before_ms: int | None = None,
    ) -> dict[str, Any]:
        """The consumer's own work, newest first, narrowed by state, category and creation
        time (strictly after / strictly before, in ms). A cursor that names none of the
        caller's work is 422 naming `starting_after`."""
        where, parameters = "consumer_tenant_id = ?", [_tenant_of(caller)]
        narrow = ""
        narrowing: list[object] = []
        for clause, value in (
            (" AND state = ?", None if status is None else status.value),
            (" AND category = ?", category),
            (" AND opened_at_ms > ?", created_after_ms),
            (" AND opened_at_ms < ?", created_before_ms),
        ):
            if value is not None:
                narrow, narrowing = narrow + clause, [*narrowing, value]
        with self.db.reader() as connection:
            listing = keyset_page(
                connection,
                _WORK_KEYSET,
                _WORK_SELECT,
                where,
                parameters,
                starting_after=starting_after,
                limit=page_size(limit),
                narrow=(narrow, narrowing),
            )
            rows, more = listed(listing, "unknown_work")
        return page_answer([_work_view(row) for row in many(_WorkRow, rows)], more, "work_id")

    def open_work(
        self,
        caller: Principal,
        provider_id: str | None,
        *,
        limit: int,
        starting_after: str | None = None,
    ) -> dict[str, object]:
        """The open work (bid window not yet closed) that `provider_id`'s subscriptions match,
        newest first, each as the provider is told of it when it is published
        (aex/core/notifications.py): the work, never its bids nor its consumer. A provider key
        lists for itself, a tenant key for one of its providers; any other provider id is 403
        naming `provider_id` (an unknown one too: no existence leak); a tenant key must name
        one (422 otherwise), a provider key lists its own by default."""
        provider_id = self._acts_for(caller, provider_id)
        limit = page_size(limit)
        found: list[dict[str, object]] = []
        scanned, more, cursor = 0, True, starting_after
        with self.db.reader() as connection:
            subscriptions = [
                (json.loads(row.categories), json.loads(row.capabilities))
                for row in many(
                    _SubscriptionRow, connection.execute(_SUBSCRIPTIONS_SELECT, (provider_id,))
                )
            ]
            # Rows whose category one of the provider's patterns matches (the index); the
            # capability patterns are checked here, so a page is read in batches.
            while more and len(found) <= limit and scanned < OPEN_WORK_SCANNED_MAX:
                listing = keyset_page(
                    connection,
                    _WORK_KEYSET,
                    _WORK_SELECT,
                    _CATEGORY_SUBSCRIBED,
                    [provider_id],
                    starting_after=cursor,
                    limit=limit + 1,
                    narrow=(" AND state = 'OPEN' AND closes_at_ms > ?", [self.clock()]),
                )
                rows, more = listed(listing, "unknown_work")
                works = many(_WorkRow, rows)
                scanned += len(works)
                cursor = works[-1].work_id if works else cursor
                found += [
                    _open_work_view(provider_id, work)
                    for work in works
                    if _any_matches(subscriptions, work.category, work.capability)
                ]
        if len(found) > limit:
            return page_answer(found[:limit], True, "work_id")
        # Short: every row read (no more), or the scan's bound met (more: go on from the last
        # row read, which is one the provider's categories match).
        return {"data": found, "has_more": more, "next_cursor": cursor if more else None}

    def _acts_for(self, caller: Principal, provider_id: str | None) -> str:
        if provider_id is None and caller.kind is PrincipalKind.PROVIDER:
            provider_id = caller.provider_id
        if provider_id is None:
            raise ProblemError(
                422,
                "invalid-request",
                "a tenant key names the provider it lists for",
                errors=(FieldError("provider_id", "required"),),
            )
        if caller.kind is PrincipalKind.PROVIDER:
            allowed = caller.provider_id == provider_id
        else:
            owner = self._read_scalar(
                "SELECT tenant_id FROM providers WHERE provider_id = ?", (provider_id,)
            )
            allowed = owner is not None and owner == caller.tenant_id
        if not allowed:
            raise ProblemError(
                403,
                "provider-mismatch",
                "list open work only for a provider you act for",
                errors=(FieldError("provider_id", "not_the_caller"),),
            )
        return provider_id

    @traced("market.cancel_work")
    def cancel_work(self, caller: Principal, work_id: str) -> dict[str, object]:
        def write(tx: Tx) -> Any:
            row = one(
                _WorkRow,
                tx.execute(_WORK_SELECT + " WHERE work_id = ?" + tx.for_update, (work_id,)),
            )
            if row is None or row.consumer_tenant_id != _tenant_of(caller):
                raise _Refused(_not_found("work"))
            _checked(transition(WorkState(row.state), WorkEventKind.CANCEL))
            tx.ledger(Release(f"release-{row.hold_id}", row.hold_id))
            tx.execute(
                "UPDATE work SET state = 'CANCELLED', closed_at_ms = ? WHERE work_id = ?",
                (tx.now_ms, work_id),
            )
            tx.emit(EventType.WORK_CANCELLED, work_id, {"work_id": work_id})

        self.write(write)
        return self.work(caller, work_id)

    # -- bids -------------------------------------------------------------------------------

    @traced("market.submit_bid")
    def submit_bid(self, caller: Principal, body: object) -> dict[str, object]:
        write, answer = self._bid(caller, body)
        self.write(write)
        return answer

    @traced("market.submit_bid")
    async def submit_bid_async(self, caller: Principal, body: object) -> dict[str, object]:
        """`submit_bid` from the event loop: the checks run here (one indexed read), the write
        in the group-commit writer; no worker-thread hop on the hottest route."""
        write, answer = self._bid(caller, body)
        await self.write_async(write)
        return answer

    def _bid(
        self, caller: Principal, body: object
    ) -> tuple[Callable[[Tx], None], dict[str, object]]:
        provider_id = body.get("provider_id") if isinstance(body, dict) else None
        if caller.kind is not PrincipalKind.PROVIDER or caller.provider_id != provider_id:
            raise ProblemError(
                403,
                "provider-credential-required",
                "bid with the key of the provider named in provider_id",
                errors=(FieldError("provider_id", "not_the_caller"),),
            )
        work_id = body.get("work_id") if isinstance(body, dict) else None
        work = self._read_one(_WorkRow, _WORK_SELECT + " WHERE work_id = ?", (str(work_id),))
        if work is None:
            raise _not_found("work")
        bid = parse_bid(body, currency=work.currency)
        if isinstance(bid, Rejected):
            raise problem_for_rejected(bid)
        bid_id = new_id("bid")

        def write(tx: Tx) -> None:
            terms = one(_BidTermsRow, tx.execute(_BID_TERMS_SELECT + tx.for_update, (bid.work_id,)))
            assert terms is not None, "a work is never deleted"
            counts = one(
                _BidCountsRow, tx.execute(_BID_COUNTS_SELECT, (bid.provider_id, bid.work_id))
            )
            assert counts is not None
            rejected = check_bid_admission(
                work_state=WorkState(terms.state),
                now_ms=tx.now_ms,
                window_closes_at_ms=terms.closes_at_ms,
                provider_active=_provider_active(tx, bid.provider_id),
                provider_subscribed=_subscribed(
                    tx, bid.provider_id, terms.category, terms.capability
                ),
                provider_has_bid=counts.own_bids > 0,
                bids_on_work=min(counts.bids, limits.bids_per_work_max),
                provider_owned_by_consumer=terms.consumer_tenant_id == _tenant_of(caller),
            )
            if rejected is not None:
                raise _Refused(problem_for_rejected(rejected))
            tx.execute(
                "INSERT INTO bids VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    bid_id,
                    bid.work_id,
                    bid.provider_id,
                    _tenant_of(caller),
                    bid.price.amount_minor,
                    bid.confidence,
                    bid.estimated_duration_ms,
                    bid.max_turnaround_ms,
                    int(bid.sample_work is not None),
                    to_json_text(body),
                    tx.now_ms,
                ),
            )
            tx.emit(
                EventType.BID_SUBMITTED,
                bid_id,
                {"bid_id": bid_id, "work_id": bid.work_id, "provider_id": bid.provider_id},
            )

        return write, {
            "bid_id": bid_id,
            "work_id": bid.work_id,
            "provider_id": bid.provider_id,
            "price": format_amount(bid.price),
            "currency": bid.price.currency,
            "status": "SUBMITTED",
        }

    def bids(
        self, caller: Principal, work_id: str, *, limit: int, starting_after: str | None = None
    ) -> dict[str, Any]:
        """The bids on the caller's work, newest first (the consumer only: 404 otherwise). A
        cursor that names none of this work's bids is 422 naming `starting_after`."""
        self.work(caller, work_id)
        with self.db.reader() as connection:
            listing = keyset_page(
                connection,
                _BIDS_KEYSET,
                _BIDS_SELECT,
                "b.work_id = ?",
                [work_id],
                starting_after=starting_after,
                limit=page_size(limit),
            )
            rows, more = listed(listing, "unknown_bid")
        page = [
            {
                "bid_id": bid.bid_id,
                "provider_id": bid.provider_id,
                "bid": json.loads(bid.body),
                "submitted_at_ms": bid.submitted_at_ms,
            }
            for bid in many(_BidListRow, rows)
        ]
        return page_answer(page, more, "bid_id")

    def own_bids(
        self, caller: Principal, *, limit: int, starting_after: str | None = None
    ) -> dict[str, object]:
        """The caller's own bids, newest first: a provider key its own, a tenant its
        providers'. Sealed: no other provider's bid, price or count. A cursor that names none
        of the caller's bids is 422 naming `starting_after`."""
        limit = page_size(limit)
        if caller.kind is PrincipalKind.PROVIDER:
            where, parameters = "b.provider_id = ?", [caller.provider_id]
        else:
            where, parameters = "b.provider_tenant_id = ?", [caller.tenant_id]
        with self.db.reader() as connection:
            listing = keyset_page(
                connection,
                _BIDS_KEYSET,
                _OWN_BIDS_SELECT,
                where,
                parameters,
                starting_after=starting_after,
                limit=limit,
            )
            rows, more = listed(listing, "unknown_bid")
        page = [
            {
                "bid_id": bid.bid_id,
                "work_id": bid.work_id,
                "provider_id": bid.provider_id,
                "work_status": bid.work_status,
                "bid": json.loads(bid.body),
                "submitted_at_ms": bid.submitted_at_ms,
            }
            for bid in many(_OwnBidRow, rows)
        ]
        return page_answer(page, more, "bid_id")

    # -- window close, evaluation, award -----------------------------------------------------

    def due_windows(self, now: int) -> list[str]:
        rows = self._read(
            "SELECT work_id FROM work WHERE state = 'OPEN' AND closes_at_ms <= ?"
            " ORDER BY closes_at_ms LIMIT ?",
            (now, DUE_WINDOWS_PER_POLL_MAX),
        )
        return [str(work_id) for work_id in scalars(rows)]

    @traced("market.award")
    def close_window(self, work_id: str, *, early: bool = False) -> str | None:
        """Closes one due window, evaluates its bids and awards or leaves it unfilled.

        Returns the new work state, or None when this caller did not close it (another closer
        won, or the window is not due yet): the OPEN -> EVALUATING transition is read inside the
        write transaction, so exactly one caller closes each window.
        """

        def write(tx: Tx) -> Any:
            # SKIP LOCKED on PostgreSQL: a window another process is closing is its to close
            # (the operator's early close waits for the row instead).
            lock = tx.for_update if early else tx.skip_locked
            row = one(_WorkRow, tx.execute(_WORK_SELECT + " WHERE work_id = ?" + lock, (work_id,)))
            if row is None or row.state != WorkState.OPEN:
                return None
            if row.closes_at_ms > tx.now_ms and not early:
                return None
            state = _checked(transition(WorkState.OPEN, WorkEventKind.CLOSE_WINDOW))
            tx.emit(EventType.WORK_BID_WINDOW_CLOSED, work_id, {"work_id": work_id})
            if not early:  # an operator's early close is before the deadline: no lag
                tx.measure("window_close_lag", (tx.now_ms - row.closes_at_ms) / 1000)
            spec = parse_work_spec(json.loads(row.spec))
            assert isinstance(spec, WorkSpec), "a stored spec parses"
            scored = evaluate(
                _terms(spec, row),
                _bid_rows(tx, spec, work_id),
                now_ms=tx.now_ms,
                weights=self.weights.weights,
                calibration=self.weights.calibration,
                payment_rule=self.weights.payment_rule,
            )
            winner = next((s for s in scored if s.is_winner), None)
            evaluation: dict[str, object] = {
                "work_id": work_id,
                "evaluated_at_ms": tx.now_ms,
                "weights": self.weights.name,
                "bids": [s.to_json() for s in scored],
            }
            if self.weights.payment_rule is not FIRST_SCORE:  # first score: the spec's document
                evaluation["payment_rule"] = self.weights.payment_rule.value
                if winner is not None:
                    assert winner.contract_price_minor is not None
                    evaluation["contract_price"] = {
                        "amount": _money(winner.contract_price_minor, row.currency),
                        "currency": row.currency,
                    }
            tx.execute(
                "INSERT INTO evaluations VALUES (?, ?, ?)",
                (work_id, to_json_text(evaluation), tx.now_ms),
            )
            tx.emit(
                EventType.BIDS_EVALUATED,
                work_id,
                {
                    "work_id": work_id,
                    "bids": len(scored),
                    "consumer_tenant_id": row.consumer_tenant_id,
                },
            )
            price_minor = None if winner is None else winner.contract_price_minor
            refused = None if price_minor is None else _mandate_refusal(tx, row, price_minor)
            if winner is None or price_minor is None or refused is not None:
                state = _checked(transition(state, WorkEventKind.FIND_NO_VALID_BID))
                tx.ledger(Release(f"release-{row.hold_id}", row.hold_id))
                tx.execute(
                    "UPDATE work SET state = ?, closed_at_ms = ? WHERE work_id = ?",
                    (state.value, tx.now_ms, work_id),
                )
                unfilled: dict[str, object] = {
                    "work_id": work_id,
                    "losers": [s.provider_id for s in scored],
                }
                if refused is not None:  # the mandate no longer covers the contract price
                    unfilled["mandate_refused"] = refused.reason.value.replace("_", "-")
                tx.emit(EventType.WORK_UNFILLED, work_id, unfilled)
                return str(state.value)
            state = _checked(transition(state, WorkEventKind.AWARD))
            losers = [s.provider_id for s in scored if not s.is_winner]
            _award(tx, row, winner.bid_id, price_minor, losers)
            return str(state.value)

        closed: str | None = self.write(write)
        return closed

    # -- payouts: the escrow of a settled contract is captured once its dispute window ends ----

    def due_payouts(self, now: int) -> list[str]:
        """SETTLED, undisputed contracts whose dispute window ended and that are not paid out."""
        rows = self._read(
            "SELECT contract_id FROM contracts WHERE state = 'SETTLED' AND paid_out_at_ms IS NULL"
            " AND settled_at_ms < ? ORDER BY settled_at_ms LIMIT ?",
            (now - DISPUTE_WINDOW_MS, DUE_PAYOUTS_PER_POLL_MAX),
        )
        return [str(contract_id) for contract_id in scalars(rows)]

    @traced("market.pay_out")
    def pay_out_due(self, contract_id: str) -> bool:
        """Captures one settled contract's escrow if its dispute window is over (exactly once:
        the state and paid_out_at_ms are read under the row lock; the capture's operation id is
        the hold's). Returns whether this call paid it out."""

        def write(tx: Tx) -> bool:
            row = one(
                _ContractRow,
                tx.execute(
                    _CONTRACT_SELECT + " WHERE contract_id = ?" + tx.for_update, (contract_id,)
                ),
            )
            if row is None or row.state != ContractState.SETTLED or row.paid_out_at_ms is not None:
                return False
            assert row.settled_at_ms is not None, "a SETTLED contract has its settlement time"
            due = payout_due(
                settled_at_ms=row.settled_at_ms,
                now_ms=tx.now_ms,
                dispute_raised_at_ms=row.dispute_raised_at_ms,
            )
            if not due:
                return False
            _capture(tx, row)
            return True

        paid: bool = self.write(write)
        return paid

    @traced("market.close_early")
    def close_early(self, work_id: str) -> dict[str, object]:
        """The operator closes a window before its end (bids already in are evaluated)."""
        self.close_window(work_id, early=True)
        row = self._read_one(_WorkRow, _WORK_SELECT + " WHERE work_id = ?", (work_id,))
        if row is None:
            raise _not_found("work")
        return _work_view(row)

    def evaluation(self, caller: Principal, work_id: str) -> dict[str, object]:
        self.work(caller, work_id)
        body = self._read_scalar("SELECT body FROM evaluations WHERE work_id = ?", (work_id,))
        if body is None:
            raise ProblemError(409, "not-evaluated-yet", "the bid window is still open")
        result: dict[str, object] = json.loads(body)
        return result

    # -- contracts --------------------------------------------------------------------------

    def contract(self, caller: Principal, contract_id: str) -> dict[str, object]:
        with self.db.reader() as connection:
            row = self._contract_row(connection, caller, contract_id)
        return _contract_view(row)

    def _contract_row(
        self, connection: SqlConnection, caller: Principal, contract_id: str, lock: str = ""
    ) -> _ContractRow:
        row = one(
            _ContractRow,
            connection.execute(_CONTRACT_SELECT + " WHERE contract_id = ?" + lock, (contract_id,)),
        )
        if row is None or not _party(caller, row):
            raise _Refused(_not_found("contract"))
        return row

    def list_contracts(
        self,
        caller: Principal,
        *,
        limit: int,
        starting_after: str | None = None,
        status: ContractState | None = None,
        role: str | None = None,
    ) -> dict[str, object]:
        """The caller's contracts, newest award first: a provider key its own; a tenant those
        it is a party to, as consumer or through its providers (`role` narrows to one side).
        A cursor that names none of the caller's contracts is 422 naming `starting_after`."""
        assert role in (None, "consumer", "provider"), role
        limit = page_size(limit)
        if caller.kind is PrincipalKind.PROVIDER:
            where, parameters = "provider_id = ?", [caller.provider_id]
        elif role is None:
            where = "(consumer_tenant_id = ? OR provider_tenant_id = ?)"
            parameters = [caller.tenant_id, caller.tenant_id]
        else:
            where = f"{role}_tenant_id = ?"
            parameters = [caller.tenant_id]
        if status is not None:
            where += " AND state = ?"
            parameters.append(status.value)
        with self.db.reader() as connection:
            listing = keyset_page(
                connection,
                _CONTRACTS_KEYSET,
                _CONTRACT_SELECT,
                where,
                parameters,
                starting_after=starting_after,
                limit=limit,
            )
            rows, more = listed(listing, "unknown_contract")
        contracts = many(_ContractRow, rows)
        return page_answer([_contract_view(row) for row in contracts], more, "contract_id")

    def contract_or_404(self, caller: Principal, contract_id: str) -> dict[str, object]:
        try:
            return self.contract(caller, contract_id)
        except _Refused as refused:
            raise refused.problem from None

    @traced("market.report_progress")
    def report_progress(
        self, caller: Principal, contract_id: str, body: object
    ) -> dict[str, object]:
        progress = parse_progress(body)
        if isinstance(progress, Rejected):
            raise problem_for_rejected(progress)

        def write(tx: Tx) -> Any:
            row = self._contract_row(tx.connection, caller, contract_id, tx.for_update)
            _require_provider(caller, row)
            state = _checked(
                transition(ContractState(row.state), ContractEventKind.REPORT_PROGRESS)
            )
            tx.execute(
                "UPDATE contracts SET state = ?, progress = ?, updated_at_ms = ?"
                " WHERE contract_id = ?",
                (state.value, to_json_text(progress), tx.now_ms, contract_id),
            )
            tx.emit(
                EventType.CONTRACT_PROGRESS_REPORTED,
                contract_id,
                {"contract_id": contract_id, "consumer_tenant_id": row.consumer_tenant_id},
            )

        self.write(write)
        return self.contract_or_404(caller, contract_id)

    @traced("market.settle")
    def complete(self, caller: Principal, contract_id: str, body: object) -> dict[str, object]:
        completion = parse_completion(body)
        if isinstance(completion, Rejected):
            raise problem_for_rejected(completion)

        def write(tx: Tx) -> Any:
            row = self._contract_row(tx.connection, caller, contract_id, tx.for_update)
            _require_provider(caller, row)
            spec = self._spec_of(tx, row.work_id)
            verdict = evaluate_criteria(spec.success_criteria, completion.metrics)
            event = completion_event(verdict)
            state = _checked(transition(ContractState(row.state), event))
            tx.execute(
                "UPDATE contracts SET state = ?, results = ?, metrics = ?, criteria = ?,"
                " completed_at_ms = ?, updated_at_ms = ? WHERE contract_id = ?",
                (
                    state.value,
                    to_json_text(completion.results),
                    to_json_text(dict(completion.metrics)),
                    to_json_text(verdict.to_json()),
                    tx.now_ms if state is ContractState.COMPLETED else None,
                    tx.now_ms,
                    contract_id,
                ),
            )
            if state is ContractState.COMPLETED:
                tx.emit(EventType.CONTRACT_COMPLETED, contract_id, _contract_payload(row))
                _settle(tx, row)
            else:
                tx.ledger(Release(f"release-{row.hold_id}", row.hold_id))
                tx.emit(EventType.CONTRACT_FAILED, contract_id, _contract_payload(row))
                tx.emit(EventType.SETTLEMENT_RELEASED, contract_id, _contract_payload(row))
            _record_outcome(tx, contract_id)

        self.write(write)
        return self.contract_or_404(caller, contract_id)

    @traced("market.fail")
    def fail(self, caller: Principal, contract_id: str) -> dict[str, object]:
        """The provider gives up: the escrow goes back to the consumer."""

        def write(tx: Tx) -> Any:
            row = self._contract_row(tx.connection, caller, contract_id, tx.for_update)
            _require_provider(caller, row)
            state = _checked(transition(ContractState(row.state), ContractEventKind.FAIL))
            tx.ledger(Release(f"release-{row.hold_id}", row.hold_id))
            tx.execute(
                "UPDATE contracts SET state = ?, updated_at_ms = ? WHERE contract_id = ?",
                (state.value, tx.now_ms, contract_id),
            )
            tx.emit(EventType.CONTRACT_FAILED, contract_id, _contract_payload(row))
            tx.emit(EventType.SETTLEMENT_RELEASED, contract_id, _contract_payload(row))
            _record_outcome(tx, contract_id)

        self.write(write)
        return self.contract_or_404(caller, contract_id)

    @traced("market.dispute")
    def dispute(self, caller: Principal, contract_id: str, body: object) -> dict[str, object]:
        body, receipt_id = _cited_receipt(body)
        reason = parse_dispute_reason(body)
        if isinstance(reason, Rejected):
            raise problem_for_rejected(reason)

        def write(tx: Tx) -> Any:
            row = self._contract_row(tx.connection, caller, contract_id, tx.for_update)
            if (
                caller.kind is not PrincipalKind.TENANT
                or caller.tenant_id != row.consumer_tenant_id
            ):
                raise _Refused(
                    ProblemError(403, "consumer-credential-required", "the consumer disputes")
                )
            state = _checked(transition(ContractState(row.state), ContractEventKind.DISPUTE))
            # Only SETTLED takes DISPUTE (the lifecycle table), so the contract has settled.
            assert row.settled_at_ms is not None, "a SETTLED contract has its settlement time"
            rejected = check_dispute(
                settled_at_ms=row.settled_at_ms,
                now_ms=tx.now_ms,
                dispute_raised_at_ms=row.dispute_raised_at_ms,
                paid_out_at_ms=row.paid_out_at_ms,
            )
            if rejected is not None:
                raise _Refused(problem_for_rejected(rejected))
            if receipt_id is not None and receipt_id not in receipt_ids(tx.connection, contract_id):
                raise _Refused(
                    ProblemError(
                        422,
                        "receipt-not-of-contract",
                        "cite a receipt of this contract (GET /v1/contracts/{id}/receipts)",
                        errors=(FieldError("receipt_id", "receipt_not_of_contract"),),
                    )
                )
            tx.execute(
                "UPDATE contracts SET state = ?, dispute_raised_at_ms = ?, dispute_reason = ?,"
                " dispute_receipt_id = ?, updated_at_ms = ? WHERE contract_id = ?",
                (state.value, tx.now_ms, reason, receipt_id, tx.now_ms, contract_id),
            )
            payload = _contract_payload(row)
            if receipt_id is not None:  # the AP2 receipt the dispute cites
                payload = {**payload, "receipt_id": receipt_id}
            tx.emit(EventType.CONTRACT_DISPUTED, contract_id, payload)

        self.write(write)
        return self.contract_or_404(caller, contract_id)

    @traced("market.resolve")
    def resolve(self, contract_id: str, body: object) -> dict[str, object]:
        """The operator resolves a dispute: `{"resolution": "refund" | "pay_out"}`."""
        event = parse_resolution(body)
        if isinstance(event, Rejected):
            raise problem_for_rejected(event)
        assert isinstance(body, dict)
        resolution = body["resolution"]

        def write(tx: Tx) -> Any:
            row = one(
                _ContractRow,
                tx.execute(
                    _CONTRACT_SELECT + " WHERE contract_id = ?" + tx.for_update, (contract_id,)
                ),
            )
            if row is None:
                raise _Refused(_not_found("contract"))
            state = _checked(transition(ContractState(row.state), event))
            # The escrow of a disputed contract is still held (its window had not ended), so
            # both resolutions always apply: refund releases it to the consumer, pay_out
            # captures it. Only a contract captured before the hold-through-the-window rule
            # (paid_out_at_ms set by migration 8) is refunded from the provider's wallet.
            if state is ContractState.REFUNDED:
                tx.ledger(refund_operation(row.hold_id, paid_out=row.paid_out_at_ms is not None))
                tx.emit(EventType.SETTLEMENT_REFUNDED, contract_id, _contract_payload(row))
            elif row.paid_out_at_ms is None:
                _capture(tx, row)
            tx.execute(
                "UPDATE contracts SET state = ?, resolved_at_ms = ?, updated_at_ms = ?"
                " WHERE contract_id = ?",
                (state.value, tx.now_ms, tx.now_ms, contract_id),
            )
            payload = {**_contract_payload(row), "resolution": resolution}
            tx.emit(EventType.CONTRACT_DISPUTE_RESOLVED, contract_id, payload)
            _record_outcome(tx, contract_id)

        self.write(write)
        row = self._read_one(
            _ContractRow, _CONTRACT_SELECT + " WHERE contract_id = ?", (contract_id,)
        )
        assert row is not None, "a contract is never deleted"
        return _contract_view(row)

    def _spec_of(self, tx: Tx, work_id: str) -> WorkSpec:
        found = scalar(tx.execute("SELECT spec FROM work WHERE work_id = ?", (work_id,)))
        spec = parse_work_spec(json.loads(found))
        assert isinstance(spec, WorkSpec)
        return spec

    # -- reputation -------------------------------------------------------------------------

    def reputation(self, provider_id: str) -> dict[str, object]:
        with self.db.reader() as connection:
            if (
                connection.execute(
                    "SELECT 1 FROM providers WHERE provider_id = ?", (provider_id,)
                ).fetchone()
                is None
            ):
                raise _not_found("provider")
            found = provider_reputation(
                connection, provider_id, self.clock(), self.weights.reputation
            )
        return reputation_json(provider_id, found)

    # -- platform ---------------------------------------------------------------------------

    def platform_revenue(self, currency: str) -> str:
        revenue_minor = self._read_scalar(
            "SELECT coalesce(sum(amount_minor), 0) FROM postings"
            " WHERE account_id = ? AND currency = ?",
            (PLATFORM_REVENUE_ACCOUNT, currency),
        )
        return _money(int(revenue_minor), currency)


# ---------------------------------------------------------------------------------------------
# Rows and views

# One NamedTuple per query shape, its fields the columns read, the SELECT list generated from
# them (serve/stores/rows.py): a row is read by name, never by position.


class _WorkRow(NamedTuple):
    work_id: str
    consumer_tenant_id: str
    spec: str
    category: str
    state: str
    currency: str
    opened_at_ms: int
    closes_at_ms: int
    hold_id: str
    contract_id: str | None
    closed_at_ms: int | None
    budget_max_minor: int
    capability: str | None


class _BidTermsRow(NamedTuple):
    state: str
    closes_at_ms: int
    category: str
    capability: str | None
    consumer_tenant_id: str


class _BidCountsRow(NamedTuple):
    bids: int
    own_bids: int  # the bidding provider's


class _BidListRow(NamedTuple):
    bid_id: str
    provider_id: str
    body: str
    submitted_at_ms: int


class _OwnBidRow(NamedTuple):
    bid_id: str
    work_id: str
    provider_id: str
    work_status: str
    body: str
    submitted_at_ms: int


class _ScoredBidRow(NamedTuple):
    bid_id: str
    provider_id: str
    price_minor: int
    confidence: float
    has_sample: int
    max_turnaround_ms: int
    submitted_at_ms: int


class _AwardedBidRow(NamedTuple):
    provider_id: str
    provider_tenant_id: str
    price_minor: int
    max_turnaround_ms: int


class _ContractRow(NamedTuple):
    contract_id: str
    work_id: str
    bid_id: str
    consumer_tenant_id: str
    provider_id: str
    provider_tenant_id: str
    price_minor: int
    currency: str
    state: str
    hold_id: str
    promised_turnaround_ms: int
    awarded_at_ms: int
    progress: str | None
    results: str | None
    metrics: str | None
    completed_at_ms: int | None
    settled_at_ms: int | None
    fee_minor: int | None
    dispute_raised_at_ms: int | None
    resolved_at_ms: int | None
    criteria: str | None
    paid_out_at_ms: int | None
    dispute_receipt_id: str | None


class _OutcomeFactsRow(NamedTuple):
    state: str
    awarded_at_ms: int
    completed_at_ms: int | None
    promised_turnaround_ms: int
    dispute_raised_at_ms: int | None
    provider_id: str
    price_minor: int
    currency: str


class _OutcomeRow(NamedTuple):
    at_ms: int
    kind: int
    value_minor: int


class _RunningTasksRow(NamedTuple):
    open_work: int  # OPEN or EVALUATING
    open_contracts: int  # AWARDED, EXECUTING or COMPLETED


class _SubscriptionRow(NamedTuple):
    categories: str  # JSON lists of patterns
    capabilities: str


class _MatchingRow(NamedTuple):
    provider_id: str
    categories: str
    capabilities: str


_WORK_SELECT = f"SELECT {select_list(_WorkRow)} FROM work"  # noqa: S608
# The work whose category one of the provider's (the one parameter) category patterns matches,
# through the index of migration 7: a literal equal to it, or a prefix of it ("" for "*").
_CATEGORY_SUBSCRIBED = (
    "EXISTS (SELECT 1 FROM subscription_categories c WHERE c.provider_id = ?"
    " AND ((c.is_prefix = 0 AND c.pattern = work.category) OR (c.is_prefix = 1"
    " AND substr(work.category, 1, length(c.pattern)) = c.pattern)))"
)
_BID_TERMS_SELECT = f"SELECT {select_list(_BidTermsRow)} FROM work WHERE work_id = ?"  # noqa: S608
_BID_COUNTS = select_list(
    _BidCountsRow, bids="count(*)", own_bids="count(*) FILTER (WHERE provider_id = ?)"
)
_BID_COUNTS_SELECT = f"SELECT {_BID_COUNTS} FROM bids WHERE work_id = ?"  # noqa: S608
_BIDS_SELECT = f"SELECT {select_list(_BidListRow, table='b')} FROM bids b"  # noqa: S608
_SUBSCRIPTIONS_SELECT = (
    f"SELECT {select_list(_SubscriptionRow)} FROM subscriptions WHERE provider_id = ?"  # noqa: S608
)
_TENANT_PLAN_SELECT = "SELECT plan FROM tenants WHERE tenant_id = ?"


_BIDS_KEYSET = Keyset("bids b", "b.submitted_at_ms", "b.bid_id")
_CONTRACTS_KEYSET = Keyset("contracts", "awarded_at_ms", "contract_id")
_WORK_KEYSET = Keyset("work", "opened_at_ms", "work_id")
# GET /v1/work/open reads a page and one row ahead per batch.
assert PAGE_MAX + 1 <= KEYSET_PAGE_ROWS_MAX

_OWN_BIDS = select_list(_OwnBidRow, table="b", work_status="w.state")
_OWN_BIDS_SELECT = (
    f"SELECT {_OWN_BIDS} FROM bids b"  # noqa: S608
    " JOIN work w ON w.work_id = b.work_id"
)
_CONTRACT_SELECT = f"SELECT {select_list(_ContractRow)} FROM contracts"  # noqa: S608


def _work_view(row: _WorkRow) -> dict[str, object]:
    return {
        "work_id": row.work_id,
        "consumer_tenant_id": row.consumer_tenant_id,
        "status": row.state,
        "contract_id": row.contract_id,
        "bid_window_opened_at_ms": row.opened_at_ms,
        "bid_window_closes_at_ms": row.closes_at_ms,
        "closed_at_ms": row.closed_at_ms,
        "reserved": {
            "amount": _money(row.budget_max_minor, row.currency),
            "currency": row.currency,
        },
        **json.loads(row.spec),
    }


def _open_work_view(provider_id: str, row: _WorkRow) -> dict[str, object]:
    # Exactly what the provider is told when the work is published, from the one rule.
    told = provider_notification(
        provider_id,
        EventType.WORK_SUBMITTED.value,
        row.work_id,
        {
            "work_id": row.work_id,
            "work": json.loads(row.spec),
            "bid_window_closes_at_ms": row.closes_at_ms,
            "recipients": [provider_id],
        },
    )
    assert told is not None
    return dict(told.payload)


def _json_or_none(text: str | None) -> object:
    return None if text is None else json.loads(text)


def _contract_view(row: _ContractRow) -> dict[str, object]:
    fee, currency = row.fee_minor, row.currency
    return {
        "contract_id": row.contract_id,
        "work_id": row.work_id,
        "bid_id": row.bid_id,
        "consumer_tenant_id": row.consumer_tenant_id,
        "provider_id": row.provider_id,
        "status": row.state,
        "price": _money(row.price_minor, currency),
        "currency": currency,
        "platform_fee": None if fee is None else _money(fee, currency),
        "provider_payout": None if fee is None else _money(row.price_minor - fee, currency),
        "promised_turnaround_ms": row.promised_turnaround_ms,
        "awarded_at_ms": row.awarded_at_ms,
        "progress": _json_or_none(row.progress),
        "results": _json_or_none(row.results),
        "metrics": _json_or_none(row.metrics),
        "criteria": _json_or_none(row.criteria),
        "completed_at_ms": row.completed_at_ms,
        "settled_at_ms": row.settled_at_ms,
        "dispute_raised_at_ms": row.dispute_raised_at_ms,
        "resolved_at_ms": row.resolved_at_ms,
        "paid_out_at_ms": row.paid_out_at_ms,
        "dispute_receipt_id": row.dispute_receipt_id,
    }


def _contract_payload(row: _ContractRow) -> dict[str, object]:
    return {
        "contract_id": row.contract_id,
        "work_id": row.work_id,
        "provider_id": row.provider_id,
        "consumer_tenant_id": row.consumer_tenant_id,
        "price": {"amount": _money(row.price_minor, row.currency), "currency": row.currency},
    }


def _tenant_of(caller: Principal) -> str:
    if caller.tenant_id is None:
        raise ProblemError(403, "tenant-credential-required", "use a tenant API key or JWT")
    return caller.tenant_id


def _party(caller: Principal, row: _ContractRow) -> bool:
    if caller.kind is PrincipalKind.PROVIDER:
        return bool(caller.provider_id == row.provider_id)
    return bool(caller.tenant_id in (row.consumer_tenant_id, row.provider_tenant_id))


def _require_provider(caller: Principal, row: _ContractRow) -> None:
    if caller.provider_id == row.provider_id or (
        caller.kind is PrincipalKind.TENANT and caller.tenant_id == row.provider_tenant_id
    ):
        return
    raise _Refused(ProblemError(403, "provider-credential-required", "the provider reports"))


def _checked(result: Any) -> Any:
    if isinstance(result, Rejected):
        raise _Refused(problem_for_rejected(result))
    return result


def _provider_active(tx: Tx, provider_id: str) -> bool:
    status = scalar(
        tx.execute(
            "SELECT t.status FROM providers p JOIN tenants t USING (tenant_id)"
            " WHERE p.provider_id = ?",
            (provider_id,),
        )
    )
    return bool(status == "ACTIVE")


def _subscribed(
    tx: Tx | SqlConnection, provider_id: str, category: str, capability: str | None
) -> bool:
    rows = many(_SubscriptionRow, tx.execute(_SUBSCRIPTIONS_SELECT, (provider_id,)))
    return any(_matches(row.categories, row.capabilities, category, capability) for row in rows)


def _matches(categories: str, capabilities: str, category: str, capability: str | None) -> bool:
    # One subscription as stored (JSON arrays).
    return _any_matches([(json.loads(categories), json.loads(capabilities))], category, capability)


def _any_matches(
    subscriptions: Sequence[tuple[list[str], list[str]]], category: str, capability: str | None
) -> bool:
    # A work that names no capability matches on its category alone.
    return any(
        subscription_matches(
            categories,
            capabilities if capability is not None else (),
            category=category,
            work_capabilities=() if capability is None else (capability,),
        )
        for categories, capabilities in subscriptions
    )


def subscribed_providers(
    connection: SqlConnection, category: str, capability: str | None
) -> list[str]:
    """The providers with a subscription that matches the work, through the category index
    (subscription_categories: the literal category, or any of its prefixes for "x*" and "*"
    patterns); only the candidates' capability patterns are parsed."""
    assert len(category) <= limits.category_chars_max
    # Every prefix of the category ("" for "*"), padded with NULLs (which match nothing) to a
    # fixed count, so that the statement text is one and the same for every work.
    prefixes = [category[:n] for n in range(len(category) + 1)]
    padding = [None] * (_PREFIXES_MAX - len(prefixes))
    rows = many(_MatchingRow, connection.execute(_MATCHING_SELECT, (category, *prefixes, *padding)))
    return sorted(
        {
            row.provider_id
            for row in rows
            if _matches(row.categories, row.capabilities, category, capability)
        }
    )


_PREFIXES_MAX = limits.category_chars_max + 1
# Only "?" placeholders are joined into the text: no value is ever formatted into it.
_MATCHING_SELECT = (
    f"SELECT {select_list(_MatchingRow, table='s')} FROM subscriptions s"  # noqa: S608
    " WHERE s.subscription_id IN (SELECT c.subscription_id FROM subscription_categories c"
    " WHERE (c.is_prefix = 0 AND c.pattern = ?) OR (c.is_prefix = 1 AND c.pattern IN ("
    + ", ".join("?" * _PREFIXES_MAX)
    + ")))"
)


def _terms(spec: WorkSpec, row: _WorkRow) -> WorkTerms:
    return WorkTerms(
        budget_min_minor=spec.budget_min.amount_minor,
        budget_max_minor=spec.budget_max.amount_minor,
        required_turnaround_ms=spec.required_turnaround_ms,
        hard_limit_turnaround_ms=spec.hard_limit_turnaround_ms,
        window_opens_ms=row.opened_at_ms,
        window_closes_ms=row.closes_at_ms,
    )


def _bid_rows(tx: Tx, spec: WorkSpec, work_id: str) -> list[BidRow]:
    rows = many(
        _ScoredBidRow,
        tx.execute(
            f"SELECT {select_list(_ScoredBidRow)} FROM bids"  # noqa: S608
            " WHERE work_id = ? ORDER BY submitted_at_ms, bid_id",
            (work_id,),
        ),
    )
    found: list[BidRow] = []
    for bid in rows:
        provider_id = bid.provider_id
        reputation = provider_reputation(tx.connection, provider_id, tx.now_ms, tx.reputation)
        found.append(
            BidRow(
                bid_id=bid.bid_id,
                provider_id=provider_id,
                price_minor=bid.price_minor,
                confidence=bid.confidence,
                has_sample=bool(bid.has_sample),
                turnaround_ms=bid.max_turnaround_ms,
                submitted_at_ms=bid.submitted_at_ms,
                trust=reputation.score,
                tier=int(reputation.tier),
                certified_matches=certified_matches(
                    tx.connection, provider_id, spec.category, spec.capability, tx.now_ms
                ),
                eligible=_provider_active(tx, provider_id)
                and _subscribed(tx, provider_id, spec.category, spec.capability),
                successes=round(reputation.success_rate * reputation.contracts),
                contracts=reputation.contracts,
            )
        )
    return found


def _award(tx: Tx, work: _WorkRow, bid_id: str, price_minor: int, losers: list[str]) -> None:
    # Spec step 5: "Best agent wins the contract automatically". One transaction: release the
    # work's budget hold, hold the contract price as escrow (the payment rule's price: the bid
    # under first score; under second score at least the bid and at most the budget max, so
    # never more than the budget hold just released, and it cannot fail), insert the contract
    # at that price, move the work to AWARDED.
    bid = one(
        _AwardedBidRow,
        tx.execute(
            f"SELECT {select_list(_AwardedBidRow)} FROM bids WHERE bid_id = ?",  # noqa: S608
            (bid_id,),
        ),
    )
    assert bid is not None, "the winner is one of the work's bids"
    work_id, consumer, currency = work.work_id, work.consumer_tenant_id, work.currency
    assert bid.price_minor <= price_minor, "the contract price is never below the bid"
    price = Money(price_minor, currency)
    contract_id = new_id("contract")
    escrow_id = f"escrow-{contract_id}"
    tx.ledger(Release(f"release-{work.hold_id}", work.hold_id))
    tx.ledger(Hold(f"hold-{escrow_id}", escrow_id, wallet_id(consumer, currency), price))
    tx.execute(
        "INSERT INTO contracts (contract_id, work_id, bid_id, consumer_tenant_id, provider_id,"
        " provider_tenant_id, price_minor, currency, state, hold_id, promised_turnaround_ms,"
        " awarded_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'AWARDED', ?, ?, ?, ?)",
        (
            contract_id,
            work_id,
            bid_id,
            consumer,
            bid.provider_id,
            bid.provider_tenant_id,
            price_minor,
            currency,
            escrow_id,
            bid.max_turnaround_ms,
            tx.now_ms,
            tx.now_ms,
        ),
    )
    tx.execute(
        "UPDATE work SET state = 'AWARDED', contract_id = ?, closed_at_ms = ? WHERE work_id = ?",
        (contract_id, tx.now_ms, work_id),
    )
    tx.emit(
        EventType.CONTRACT_AWARDED,
        contract_id,
        {
            "contract_id": contract_id,
            "work_id": work_id,
            "bid_id": bid_id,
            "provider_id": bid.provider_id,
            "consumer_tenant_id": consumer,
            "price": {"amount": format_amount(price), "currency": currency},
            "losers": losers,
        },
    )
    mandate_id = mandate_of_work(tx, work_id)
    if mandate_id is not None:  # AP2: the award is bound to a payment mandate, receipted
        issue_receipt(
            tx,
            "checkout",
            mandate_id=mandate_id,
            contract_id=contract_id,
            payer_tenant_id=consumer,
            payee_provider_id=bid.provider_id,
            amount=price,
        )


def _settle(tx: Tx, row: _ContractRow) -> None:
    # Spec step 7: "Consumer charged, provider credited (minus 15% platform fee)", with the
    # COMPLETED -> SETTLED transition. The consumer is charged now (the price stays in escrow,
    # out of its reach); the provider is credited when the dispute window ends (`pay_out_due`)
    # or a dispute is resolved in its favour, so a payout can never be withdrawn while it can
    # still be refunded (docs/ledger.md "Settlement and disputes"). The fee is fixed now.
    state = _checked(transition(ContractState.COMPLETED, ContractEventKind.SETTLE))
    fee_minor, payout_minor = split_fee(row.price_minor, fee_bps=PLATFORM_FEE_BPS)
    currency = row.currency
    tx.execute(
        "UPDATE contracts SET state = ?, settled_at_ms = ?, fee_minor = ? WHERE contract_id = ?",
        (state.value, tx.now_ms, fee_minor, row.contract_id),
    )
    tx.measure("settlement_latency", (tx.now_ms - row.awarded_at_ms) / 1000)  # from the award
    tx.emit(
        EventType.SETTLEMENT_COMPLETED,
        row.contract_id,
        {
            **_contract_payload(row),
            "fee": {"amount": _money(fee_minor, currency), "currency": currency},
            "payout": {"amount": _money(payout_minor, currency), "currency": currency},
        },
    )
    mandate_id = mandate_of_work(tx, row.work_id)
    if mandate_id is not None:
        issue_receipt(
            tx,
            "payment",
            mandate_id=mandate_id,
            contract_id=row.contract_id,
            payer_tenant_id=row.consumer_tenant_id,
            payee_provider_id=row.provider_id,
            amount=Money(row.price_minor, currency),
        )


def _mandate_field(body: object) -> tuple[object, str | None]:
    # AP2 (serve/credentials/mandates.py): a work may name the intent mandate it is submitted under;
    # the rest of the body is the work spec (aex/core/market.py parses it, strictly).
    if not isinstance(body, dict) or "mandate_id" not in body:
        return body, None
    rest = {key: value for key, value in body.items() if key != "mandate_id"}
    mandate_id = body["mandate_id"]
    if not is_id(mandate_id):
        raise ProblemError(
            422,
            "mandate-id-invalid",
            "a mandate id ([A-Za-z0-9_-], 1 to 64 characters)",
            errors=(FieldError("mandate_id", "mandate_id_invalid"),),
        )
    return rest, mandate_id


def _cited_receipt(body: object) -> tuple[object, str | None]:
    # A dispute may cite the AP2 receipt it is about (serve/credentials/mandates.py): checked to be
    # one of the contract's; the rest of the body is the dispute's reason (aex/core/market.py).
    if not isinstance(body, dict) or "receipt_id" not in body:
        return body, None
    rest = {key: value for key, value in body.items() if key != "receipt_id"}
    receipt_id = body["receipt_id"]
    if not is_id(receipt_id):
        raise ProblemError(
            422,
            "receipt-not-of-contract",
            "a receipt id of this contract",
            errors=(FieldError("receipt_id", "receipt_not_of_contract"),),
        )
    return rest, receipt_id


def _mandate_refusal(tx: Tx, work: _WorkRow, price_minor: int) -> Rejected[Any] | None:
    # At award the contract price (what the consumer is to pay) is checked against the work's
    # mandate again (it may have been revoked or have expired since submission).
    price = Money(price_minor, work.currency)
    _, refused = award_refusal(tx, work.work_id, price, work.category)
    return refused


def _capture(tx: Tx, row: _ContractRow) -> None:
    # The escrow leaves the consumer: the provider's owner gets price - fee, the platform the
    # fee (the fee stored at settlement: the same rate, so the same split).
    payee = wallet_id(row.provider_tenant_id, row.currency)
    applied = tx.ledger(pay_out_operation(row.hold_id, payee))
    hold = next(h for h in applied.holds if h.hold_id == row.hold_id)
    assert 0 <= hold.fee_minor <= row.price_minor
    tx.execute(
        "UPDATE contracts SET paid_out_at_ms = ?, fee_minor = ? WHERE contract_id = ?",
        (tx.now_ms, hold.fee_minor, row.contract_id),
    )


def _check_concurrent_tasks(tx: Tx, consumer: str) -> None:
    # docs/market.md "Plan limits": a consumer's running tasks are its work still OPEN or
    # EVALUATING and its contracts AWARDED, EXECUTING or COMPLETED, counted at work submission
    # under the tenant's row lock (two concurrent submissions count one after the other).
    plan = scalar(tx.execute(_TENANT_PLAN_SELECT + tx.for_update, (consumer,)))
    if plan is None:  # the column is NOT NULL: no row
        return
    running = one(_RunningTasksRow, tx.execute(_RUNNING_TASKS_SELECT, (consumer, consumer)))
    assert running is not None
    rejected = check_concurrent_tasks_quota(
        Plan(plan), int(running.open_work) + int(running.open_contracts)
    )
    if rejected is not None:
        raise _Refused(problem_for_rejected(rejected))


_RUNNING = select_list(
    _RunningTasksRow,
    open_work="(SELECT count(*) FROM work WHERE consumer_tenant_id = ?"
    " AND state IN ('OPEN', 'EVALUATING'))",
    open_contracts="(SELECT count(*) FROM contracts WHERE consumer_tenant_id = ?"
    " AND state IN ('AWARDED', 'EXECUTING', 'COMPLETED'))",
)
_RUNNING_TASKS_SELECT = f"SELECT {_RUNNING}"


def _record_outcome(tx: Tx, contract_id: str) -> None:
    # One contract, one outcome (upserted): the reputation evidence of docs/market.md.
    row = one(
        _OutcomeFactsRow,
        tx.execute(
            f"SELECT {select_list(_OutcomeFactsRow)} FROM contracts"  # noqa: S608
            " WHERE contract_id = ?",
            (contract_id,),
        ),
    )
    assert row is not None, "a contract is never deleted"
    facts = ContractOutcomeFacts(
        state=ContractState(row.state),
        awarded_at_ms=row.awarded_at_ms,
        completed_at_ms=row.completed_at_ms,
        promised_turnaround_ms=row.promised_turnaround_ms,
        dispute_raised_at_ms=row.dispute_raised_at_ms,
        price=Money(row.price_minor, row.currency),
    )
    kind = outcome_of(facts)
    if kind is None:
        return
    tx.execute(
        "INSERT INTO outcomes VALUES (?, ?, ?, ?, ?) ON CONFLICT (contract_id) DO UPDATE SET"
        " kind = excluded.kind, at_ms = excluded.at_ms",
        (contract_id, row.provider_id, int(kind), row.price_minor, tx.now_ms),
    )
    found = provider_reputation(tx.connection, row.provider_id, tx.now_ms, tx.reputation)
    tx.emit(EventType.REPUTATION_UPDATED, row.provider_id, reputation_json(row.provider_id, found))


def provider_reputation(
    connection: SqlConnection,
    provider_id: str,
    now: int,
    params: ReputationParams = DEFAULT_REPUTATION_PARAMS,
) -> Reputation:
    rows = many(
        _OutcomeRow,
        connection.execute(
            f"SELECT {select_list(_OutcomeRow)} FROM outcomes WHERE provider_id = ?"  # noqa: S608
            " ORDER BY at_ms DESC LIMIT ?",
            (provider_id, limits.outcomes_per_provider_max),
        ),
    )
    outcomes = Outcomes.from_columns(
        provider_index=[0] * len(rows),
        at_ms=[min(row.at_ms, now) for row in rows],
        kind=[row.kind for row in rows],
        value_minor=[row.value_minor for row in rows],
    )
    return reputation_of(
        outcomes,
        active_certificates=active_certificates(connection, provider_id, now),
        now_ms=now,
        params=params,
    )


def active_certificates(connection: SqlConnection, provider_id: str, now: int) -> int:
    found = connection.execute(
        "SELECT count(DISTINCT certificate_id) FROM certificate_owners"
        " WHERE provider_id = ? AND state = 'ACTIVE' AND counts = 1"
        " AND expires_at_ms > ?",
        (provider_id, now),
    )
    return int(scalar(found))


def certified_matches(
    connection: SqlConnection,
    provider_id: str,
    category: str,
    capability: str | None,
    now: int,
) -> int:
    # A work that names no capability matches certificates on its category alone.
    parameters: tuple[object, ...] = (provider_id, now, category)
    if capability is not None:
        parameters += (capability,)
    found = connection.execute(
        _CERTIFIED_SELECT if capability is None else _CERTIFIED_SELECT + " AND capability = ?",
        parameters,
    )
    return int(scalar(found))


_CERTIFIED_SELECT = (
    "SELECT count(DISTINCT certificate_id) FROM certificate_owners"
    " WHERE provider_id = ? AND state = 'ACTIVE' AND counts = 1 AND expires_at_ms > ?"
    " AND category = ?"
)


def reputation_json(provider_id: str, found: Reputation) -> dict[str, object]:
    return {
        "provider_id": provider_id,
        "score": round(found.score, 6),
        "tier": found.tier.name,
        "contracts": found.contracts,
        "success_rate": round(found.success_rate, 6),
        "components": {
            "transaction_score": round(found.transaction_score, 6),
            "success_rate": round(found.success_rate, 6),
            "volume_score": round(found.volume_score, 6),
            "consistency_score": round(found.consistency_score, 6),
            "certification_bonus": round(found.certification_bonus, 6),
        },
    }
