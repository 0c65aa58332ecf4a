"""Work, bids, evaluations, contracts, disputes and reputation: thin handlers over
serve.market.usecases.

Bodies are read raw and decoded with every non-integer number as Decimal (serve.market.usecases's
`decode_body`) so that the core parses money exactly; the use case runs in a worker thread
(writes fsync their COMMIT; on PostgreSQL every statement is a round trip).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import Parameter
from litestar.response import ServerSentEvent
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from prometheus_client import CONTENT_TYPE_LATEST

from aex.core import CURRENCY_EXPONENTS, AccessScope, MoneyRejectReason, Rejected, limits
from aex.core.lifecycle import ContractState, WorkState
from serve.gateway.callers import needs, operator_caller, provider_or_tenant_caller, tenant_caller
from serve.gateway.openapi import shapes
from serve.gateway.problems import PROBLEM_RESPONSES, ProblemError, problem_for_rejected
from serve.identity.security import PrincipalKind
from serve.market.schemas import (
    BidCreate,
    BidPage,
    BidReceipt,
    Completion,
    ContractPage,
    ContractView,
    DeliveryPage,
    Dispute,
    Evaluation,
    OpenWorkPage,
    PlatformRevenue,
    ReputationView,
    Resolution,
    WorkBidPage,
    WorkCreate,
    WorkPage,
    WorkView,
)
from serve.market.usecases import PAGE_DEFAULT, PAGE_MAX, Market, decode_body
from serve.notifications.events import EventHub, MarketMetrics, StreamGate, provider_stream
from serve.notifications.webhooks import Webhooks

Json = dict[str, Any]
# Every list's paging parameters (serve/stores/pages.py `keyset_page`).
Limit = Annotated[
    int, Parameter(ge=1, le=PAGE_MAX, default=PAGE_DEFAULT, description="rows per page")
]
Cursor = Annotated[
    str | None,
    Parameter(min_length=1, max_length=64, description="the previous page's `next_cursor`"),
]

WORK_EXAMPLE: Json = {
    "title": "Review Go microservices codebase",
    "category": "TECHNOLOGY",
    "budget": {"min": "50", "max": "200", "currency": "USD"},
    "requirements": {"language": "Go", "scope": "security"},
    "success_criteria": [{"metric": "coverage", "threshold": 0.8}],
    "bid_window_seconds": 30,
}
BID_EXAMPLE: Json = {
    "work_id": "work_3f9c2a71",
    "provider_id": "prov_8d1e4b02",
    "price": "100",
    "confidence": 0.95,
    "estimated_duration": "2h",
    "sla": {"max_turnaround": "4h"},
}
COMPLETION_EXAMPLE: Json = {"results": {"report": "3 findings"}, "metrics": {"coverage": 0.91}}


def _market(request: Request[Any, Any, State]) -> Market:
    market: Market = request.app.state.market
    return market


async def _body(request: Request[Any, Any, State]) -> object:
    return decode_body(await request.body())


class WorkController(Controller):
    path = "/v1/work"
    tags = ["work"]  # noqa: RUF012

    @post(
        "/",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        opt=needs(AccessScope.MARKET) | shapes(body=WorkCreate, ok=WorkView, example=WORK_EXAMPLE),
    )
    async def submit(self, request: Request[Any, Any, State]) -> Json:
        """Posts work; holds its budget max on the consumer's wallet (402 when short)."""
        caller, body = tenant_caller(request), await _body(request)
        return await asyncio.to_thread(_market(request).submit_work, caller, body)

    @get(
        "/",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ) | shapes(ok=WorkPage),
    )
    def list_own(
        self,
        request: Request[Any, Any, State],
        limit: Limit,
        starting_after: Cursor = None,
        status: Annotated[
            WorkState | None, Parameter(description="only work in this state")
        ] = None,
        category: Annotated[
            str | None,
            Parameter(
                pattern=r"^[A-Z][A-Z0-9_]*$",
                max_length=limits.category_chars_max,
                description="only work of this category (exactly)",
            ),
        ] = None,
        created_after_ms: Annotated[
            int | None,
            Parameter(ge=0, description="only work created strictly after (Unix ms)"),
        ] = None,
        created_before_ms: Annotated[
            int | None,
            Parameter(ge=0, description="only work created strictly before (Unix ms)"),
        ] = None,
    ) -> Json:
        """The caller's work, newest first, a page at a time, narrowed by the filters given."""
        return _market(request).list_work(
            tenant_caller(request),
            limit=limit,
            starting_after=starting_after,
            status=status,
            category=category,
            created_after_ms=created_after_ms,
            created_before_ms=created_before_ms,
        )

    @get(
        "/open",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ) | shapes(ok=OpenWorkPage),
    )
    def list_open(
        self,
        request: Request[Any, Any, State],
        limit: Limit,
        starting_after: Cursor = None,
        provider_id: Annotated[
            str | None,
            Parameter(
                min_length=1,
                max_length=64,
                description="the provider listed for: a tenant key names one of its own; a"
                " provider key its own (the default)",
            ),
        ] = None,
    ) -> Json:
        """Open work (bid window not closed) that the provider's subscriptions match, newest
        first, as the provider is told of it when published: sealed, no bids, no consumer."""
        return _market(request).open_work(
            provider_or_tenant_caller(request),
            provider_id,
            limit=limit,
            starting_after=starting_after,
        )

    @get(
        "/{work_id:str}",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ) | shapes(ok=WorkView),
    )
    def show(self, request: Request[Any, Any, State], work_id: str) -> Json:
        """Status and, once awarded, contract_id; the consumer's only (404 otherwise)."""
        return _market(request).work(tenant_caller(request), work_id)

    @post(
        "/{work_id:str}/cancel",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.MARKET) | shapes(ok=WorkView),
    )
    async def cancel(self, request: Request[Any, Any, State], work_id: str) -> Json:
        """Cancels while bidding is open and releases the budget hold (409 otherwise)."""
        caller = tenant_caller(request)
        return await asyncio.to_thread(_market(request).cancel_work, caller, work_id)

    @get(
        "/{work_id:str}/bids",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ) | shapes(ok=WorkBidPage),
    )
    def bids(
        self,
        request: Request[Any, Any, State],
        work_id: str,
        limit: Limit,
        starting_after: Cursor = None,
    ) -> Json:
        """The bids on the caller's work, newest first (the consumer only)."""
        return _market(request).bids(
            tenant_caller(request), work_id, limit=limit, starting_after=starting_after
        )

    @get(
        "/{work_id:str}/evaluation",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ) | shapes(ok=Evaluation, problems=(409,)),
    )
    def evaluation(self, request: Request[Any, Any, State], work_id: str) -> Json:
        """Every bid's components, total, rank and rejection reason (the consumer only)."""
        return _market(request).evaluation(tenant_caller(request), work_id)


class BidController(Controller):
    path = "/v1/bids"
    tags = ["bids"]  # noqa: RUF012

    @get(
        "/",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ) | shapes(ok=BidPage),
    )
    def list_own(
        self,
        request: Request[Any, Any, State],
        limit: Limit,
        starting_after: Cursor = None,
    ) -> Json:
        """The caller's own bids, newest first, with the state of the work each is on: a
        provider key its own, a tenant key its providers'. Sealed: nobody else's."""
        return _market(request).own_bids(
            provider_or_tenant_caller(request), limit=limit, starting_after=starting_after
        )

    @post(
        "/",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_201_CREATED,
        opt=needs(AccessScope.MARKET) | shapes(body=BidCreate, ok=BidReceipt, example=BID_EXAMPLE),
    )
    async def submit(self, request: Request[Any, Any, State]) -> Json:
        """A sealed bid with the provider's own key, while the window is open."""
        caller, body = provider_or_tenant_caller(request), await _body(request)
        return await _market(request).submit_bid_async(caller, body)


class ContractController(Controller):
    path = "/v1/contracts"
    tags = ["contracts"]  # noqa: RUF012

    @get(
        "/",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ) | shapes(ok=ContractPage),
    )
    def list_contracts(
        self,
        request: Request[Any, Any, State],
        limit: Limit,
        starting_after: Cursor = None,
        status: Annotated[
            ContractState | None, Parameter(description="only contracts in this state")
        ] = None,
        role: Annotated[
            Literal["consumer", "provider"] | None,
            Parameter(description="a tenant key: only the side it is on (default both)"),
        ] = None,
    ) -> Json:
        """The caller's contracts, newest award first, both parties: the consumer's tenant, the
        provider's tenant and the provider's own key each see theirs, nobody else's."""
        return _market(request).list_contracts(
            provider_or_tenant_caller(request),
            limit=limit,
            starting_after=starting_after,
            status=status,
            role=role,
        )

    @get(
        "/{contract_id:str}",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.READ) | shapes(ok=ContractView),
    )
    def show(self, request: Request[Any, Any, State], contract_id: str) -> Json:
        """The contract, for its consumer and its provider."""
        caller = provider_or_tenant_caller(request)
        return _market(request).contract_or_404(caller, contract_id)

    @post(
        "/{contract_id:str}/progress",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.MARKET)
        | shapes(body=dict[str, Any], ok=ContractView, example={"percent": 50}),
    )
    async def progress(self, request: Request[Any, Any, State], contract_id: str) -> Json:
        """The provider reports progress (AWARDED -> EXECUTING)."""
        caller, body = provider_or_tenant_caller(request), await _body(request)
        market = _market(request)
        return await asyncio.to_thread(market.report_progress, caller, contract_id, body)

    @post(
        "/{contract_id:str}/complete",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.MARKET)
        | shapes(body=Completion, ok=ContractView, example=COMPLETION_EXAMPLE),
    )
    async def complete(self, request: Request[Any, Any, State], contract_id: str) -> Json:
        """Results and metrics, checked against the success criteria; settles or fails."""
        caller, body = provider_or_tenant_caller(request), await _body(request)
        return await asyncio.to_thread(_market(request).complete, caller, contract_id, body)

    @post(
        "/{contract_id:str}/fail",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.MARKET) | shapes(ok=ContractView),
    )
    async def fail(self, request: Request[Any, Any, State], contract_id: str) -> Json:
        """The provider gives up; the escrow is released to the consumer."""
        caller = provider_or_tenant_caller(request)
        return await asyncio.to_thread(_market(request).fail, caller, contract_id)

    @post(
        "/{contract_id:str}/dispute",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.MARKET)
        | shapes(body=Dispute, ok=ContractView, example={"reason": "wrong repository"}),
    )
    async def dispute(self, request: Request[Any, Any, State], contract_id: str) -> Json:
        """The consumer disputes a settled contract within the dispute window (72 h)."""
        caller, body = tenant_caller(request), await _body(request)
        return await asyncio.to_thread(_market(request).dispute, caller, contract_id, body)


class OperatorMarketController(Controller):
    path = "/v1/admin"
    tags = ["operator"]  # noqa: RUF012

    @post(
        "/contracts/{contract_id:str}/resolve",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.OPERATOR)
        | shapes(body=Resolution, ok=ContractView, example={"resolution": "refund"}),
    )
    async def resolve(self, request: Request[Any, Any, State], contract_id: str) -> Json:
        """Resolves a dispute: {"resolution": "refund" | "pay_out"}."""
        operator_caller(request)
        body = await _body(request)
        return await asyncio.to_thread(_market(request).resolve, contract_id, body)

    @post(
        "/work/{work_id:str}/close",
        responses=PROBLEM_RESPONSES,
        status_code=HTTP_200_OK,
        opt=needs(AccessScope.OPERATOR) | shapes(ok=WorkView),
    )
    async def close(self, request: Request[Any, Any, State], work_id: str) -> Json:
        """Closes a bid window now: evaluation and award as at its end."""
        operator_caller(request)
        return await asyncio.to_thread(_market(request).close_early, work_id)

    @get(
        "/platform-revenue",
        responses=PROBLEM_RESPONSES,
        sync_to_thread=True,
        opt=needs(AccessScope.OPERATOR) | shapes(ok=PlatformRevenue),
    )
    def revenue(
        self,
        request: Request[Any, Any, State],
        currency: Annotated[str, Parameter(pattern=r"^[A-Z]{3}$", default="USD")],
    ) -> Json:
        """The platform's fee account balance."""
        operator_caller(request)
        if currency not in CURRENCY_EXPONENTS:  # a well-formed code the exchange does not hold
            reason = MoneyRejectReason.CURRENCY_UNKNOWN
            raise problem_for_rejected(Rejected(reason, "currency", f"{currency!r}"))
        return {"currency": currency, "amount": _market(request).platform_revenue(currency)}


@get(
    "/v1/providers/{provider_id:str}/reputation",
    responses=PROBLEM_RESPONSES,
    sync_to_thread=True,
    tags=["reputation"],
    opt=needs(AccessScope.READ) | shapes(ok=ReputationView),
)
def provider_reputation(request: Request[Any, Any, State], provider_id: str) -> Json:
    """Score, tier, contracts, success rate and the components (any authenticated caller)."""
    return _market(request).reputation(provider_id)


@get(
    "/v1/notifications/stream",
    responses=PROBLEM_RESPONSES,
    tags=["notifications"],
    opt=needs(AccessScope.READ),
)
async def notification_stream(request: Request[Any, Any, State]) -> ServerSentEvent:
    """Server-sent events for the calling provider (its provider key): matching work as it is
    published, awards and losses, its contracts' changes. Resume with Last-Event-ID."""
    caller = provider_or_tenant_caller(request)
    if caller.kind is not PrincipalKind.PROVIDER or caller.provider_id is None:
        raise ProblemError(403, "provider-credential-required", "open it with a provider key")
    last = request.headers.get("last-event-id")
    last_seq = int(last) if last is not None and last.isdigit() else None
    hub: EventHub = request.app.state.hub
    gate: StreamGate = request.app.state.streams
    assert caller.key_id is not None
    slot = gate.acquire(caller.key_id)  # 429 beyond limits.notification_streams_per_key_max

    async def authorised() -> bool:
        return await asyncio.to_thread(gate.still_authorised, caller)

    stream = provider_stream(
        hub,
        caller.provider_id,
        last_seq,
        slot=slot,
        authorised=authorised,
        reauthorise_s=gate.reauthorise_s,
    )
    return ServerSentEvent(stream)


@get(
    "/v1/notifications/deliveries",
    responses=PROBLEM_RESPONSES,
    sync_to_thread=True,
    tags=["notifications"],
    opt=needs(AccessScope.READ) | shapes(ok=DeliveryPage),
)
def webhook_deliveries(
    request: Request[Any, Any, State],
    limit: Limit,
    starting_after: Cursor = None,
) -> Json:
    """The calling provider's webhook deliveries: attempts, status, last error (newest first)."""
    caller = provider_or_tenant_caller(request)
    if caller.kind is not PrincipalKind.PROVIDER or caller.provider_id is None:
        raise ProblemError(403, "provider-credential-required", "use a provider key")
    webhooks: Webhooks = request.app.state.webhooks
    return webhooks.deliveries(caller.provider_id, limit=limit, starting_after=starting_after)


@get(
    "/metrics",
    tags=["ops"],
    sync_to_thread=False,
    include_in_schema=False,
    opt=needs(AccessScope.OPERATOR, public_when="metrics_public"),
)
def metrics(request: Request[Any, Any, State]) -> Response[bytes]:
    """Prometheus exposition: requests, latencies, bids, awards, settlements, GMV, fees. The
    operator key (X-API-Key, or `Authorization: Bearer` for a Prometheus scrape config) unless
    AEX_METRICS_PUBLIC=1."""
    if not request.app.state.metrics_public:
        operator_caller(request)
    found: MarketMetrics = request.app.state.metrics
    return Response(found.exposition(), media_type=CONTENT_TYPE_LATEST)


MARKET_HANDLERS = (
    WorkController,
    BidController,
    ContractController,
    OperatorMarketController,
    provider_reputation,
    notification_stream,
    webhook_deliveries,
)
