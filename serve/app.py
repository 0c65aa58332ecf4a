"""The application factory: stores, the gateway pipeline, routes and the problem+json mapping.

The spec's pipeline is built outside Litestar as one ASGI layer, the gateway
(serve/gateway/pipeline.py), in the spec's order (request id → trace span → JSON logs →
recovery → CORS → timeout → rate limit → auth), so that every response, a 404 for an unknown
path included, passes through all of them. Idempotency runs inside it (it needs the
authenticated tenant), then Litestar routes the request; the gateway answers the plain case of
a hot read (`GET /v1/balance`) itself, with the same service and the same JSON.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any, NamedTuple

from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, Reference, SecurityScheme
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

import aex
from aex.core import limits
from serve.background import market_lifespan
from serve.billing.routes import BILLING_HANDLERS
from serve.billing.usecases import Billing
from serve.breakers import BreakerRegistry
from serve.certauth.certificates import Certificates
from serve.certauth.routes import CERTIFICATE_HANDLERS
from serve.credentials.mandates import Mandates
from serve.credentials.routes import MANDATE_HANDLERS
from serve.dashboard import dashboard_router, dashboard_state, template_config
from serve.gateway.asgi import ASGIApp
from serve.gateway.callers import (
    PUBLIC,
    SECURITY_SCHEMES,
    admitting,
    declare_security,
    declared_scope_of,
    needs,
    require_scope,
    route_scopes,
)
from serve.gateway.edge import Cors
from serve.gateway.locations import LocationMiddleware, document_locations
from serve.gateway.middleware import UNLIMITED_ROUTES, Admission, IdempotencyMiddleware
from serve.gateway.openapi import describe, narrow_problems, shapes
from serve.gateway.pipeline import Gateway, HotRoute
from serve.gateway.problems import PROBLEM_RESPONSES, problem_response
from serve.gateway.schemas import StrictRequest, refuse_unknown_query
from serve.identity.routes import OperatorController, TenantController, create_tenant
from serve.identity.security import Authenticator
from serve.market.evaluation import kernel_ready
from serve.market.evaluation import warm_up_in_background as warm_scoring
from serve.market.routes import MARKET_HANDLERS
from serve.market.routes import metrics as metrics_route
from serve.market.schemas import Health, Readiness
from serve.market.usecases import Market
from serve.notifications.events import (
    DurableTail,
    EventHub,
    MarketMetrics,
    RequestMetrics,
    RouteLabels,
    StreamGate,
    metrics_process_exit,
    reap_dead_metric_processes,
)
from serve.notifications.webhooks import WEBHOOK_TAIL, Webhooks
from serve.registry.agentcard_routes import AGENT_CARD_HANDLERS
from serve.registry.agentcards import AgentCards
from serve.registry.routes import ProviderController, SubscriptionController
from serve.secret_box import SecretBox
from serve.services import Identity, Registry
from serve.settings import Settings
from serve.settlement.routes import BALANCE_PATH, WalletController, balance_hot_route
from serve.settlement.sqlite_ledger import SqliteLedger
from serve.settlement.wallets import Wallets
from serve.stores.base import KeyCache, KeyStore, LedgerStore, RateLimitStore
from serve.stores.market_db import MarketDb, PostgresMarketDb, SqliteMarketDb
from serve.stores.memory import GcraRateLimiter, TtlKeyCache
from serve.stores.sqlite import SqliteStore
from serve.tokenbank.routes import VOUCHER_HANDLERS
from serve.tokenbank.vouchers import Vouchers


@get(
    "/health",
    responses=PROBLEM_RESPONSES,
    sync_to_thread=False,
    tags=["ops"],
    opt=needs(PUBLIC) | shapes(ok=Health),
)
def health() -> dict[str, str]:
    """Liveness: the process answers (no store access). Never rate limited."""
    return {"status": "ok"}


@get("/ready", sync_to_thread=True, tags=["ops"], opt=needs(PUBLIC) | shapes(ok=Readiness))
def ready(request: Request[Any, Any, State]) -> Response[dict[str, Any]]:
    """Ready to serve: the database answers; every outbound breaker's state, for the operator.

    503 while the database does not answer or its `postgres` breaker is open (a load balancer
    takes the process out of rotation); an open Redis or NATS breaker does not make the
    process unready (Redis fails open, events wait in the outbox). `scoring_engine` says
    whether windows are scored by the compiled kernel yet or by the numpy engine meanwhile.
    """
    store: KeyStore = request.app.state.store
    try:
        store.credentials_epoch()
        database = "ok"
    except Exception:  # any driver error: the database is not answering
        database = "unavailable"
    body = {
        "status": "ready" if database == "ok" else "unavailable",
        "checks": {"database": database},
        "breakers": request.app.state.breakers.states(),
        "scoring_engine": "compiled" if kernel_ready() else "numpy",
    }
    status = HTTP_200_OK if database == "ok" else HTTP_503_SERVICE_UNAVAILABLE
    return Response(body, status_code=status)


def freeze_startup_heap() -> None:
    """Moves every object alive at startup (modules, the app, its routes and OpenAPI document:
    about a million) out of the collector's sight (`gc.freeze`): they live as long as the
    process, and a full collection would otherwise traverse them all, a pause of tens of
    milliseconds in some request's latency every few thousand requests."""
    gc.collect()
    gc.freeze()


def build_litestar(
    store: KeyStore,
    settings: Settings,
    ledger: LedgerStore | None = None,
    metrics: MarketMetrics | None = None,
    breakers: BreakerRegistry | None = None,
) -> Litestar:
    box = SecretBox(settings.webhook_key)
    endpoints = settings.endpoint_policy()
    identity, registry = Identity(store), Registry(store, box, endpoints)
    if ledger is None:
        assert isinstance(store, SqliteStore)
        ledger = SqliteLedger(store)
    metrics = metrics or MarketMetrics()
    breakers = breakers or BreakerRegistry()
    state: dict[str, Any] = {
        "wallets": Wallets(ledger),
        "metrics": metrics,
        "store": store,
        "breakers": breakers,
        "metrics_public": settings.metrics_public,
    }
    handlers: list[Any] = [
        health,
        ready,
        create_tenant,
        TenantController,
        OperatorController,
        ProviderController,
        SubscriptionController,
        WalletController,
        metrics_route,
    ]
    # The market (work, bids, contracts, certificates, events) on the same database as the
    # rest: one SQLite file by default, PostgreSQL for several processes.
    db = _market_db(store)
    hub, market = EventHub(db), Market(db, weights=settings.weights)
    webhooks = Webhooks(
        market,
        endpoints,
        box=box,
        backoff_ms=settings.webhook_backoff_ms,
        lease_ms=settings.webhook_lease_ms,
        breakers=breakers,
        metrics=metrics,
    )
    market.committed.append(metrics.on_commit)  # counted once, by the committing process
    certificates = Certificates(market, settings.data_dir, endpoints)
    market.receipt_signer = certificates.keys.signer  # AP2 receipts: the CA's active key
    # Webhooks tail the outbox from a saved cursor (an event committed when the process stops
    # is still sent after a restart); streams follow the hub, from the outbox's head.
    webhook_tail = DurableTail(db, WEBHOOK_TAIL, webhooks.fan_out, poll_ms=hub.poll_ms)
    state |= {
        "market": market,
        "agent_cards": AgentCards(market),
        "version": aex.__version__,
        "certificates": certificates,
        "billing": Billing(market),
        "mandates": Mandates(market),
        "vouchers": Vouchers(market),
        "hub": hub,
        "streams": StreamGate(store, reauthorise_s=settings.stream_reauthorise_s),
        "webhooks": webhooks,
        "webhook_tail": webhook_tail,
        "nats_url": settings.nats_url,
        "nats_prefix": settings.nats_prefix,
        "nats_retention": (settings.nats_max_age_s, settings.nats_duplicate_window_s),
        "window_poll_ms": settings.window_poll_ms,
    }
    state |= dashboard_state(store, settings, market, state["wallets"])  # serve/dashboard
    handlers += [*MARKET_HANDLERS, *CERTIFICATE_HANDLERS, *AGENT_CARD_HANDLERS]
    handlers += [*BILLING_HANDLERS, *MANDATE_HANDLERS, *VOUCHER_HANDLERS, _docs_assets()]
    handlers.append(dashboard_router())
    app = Litestar(
        route_handlers=handlers,
        dependencies={
            "identity": Provide(lambda: identity, sync_to_thread=False, use_cache=True),
            "registry": Provide(lambda: registry, sync_to_thread=False, use_cache=True),
            "jwt_secret": Provide(lambda: settings.jwt_secret, sync_to_thread=False),
        },
        exception_handlers={HTTPException: problem_response, Exception: problem_response},
        state=State(state),
        lifespan=[market_lifespan],
        # numba compiles the scoring kernel on a thread; with several workers, the live gauges
        # of workers that are gone leave the node's scrape, and so do this one's when it stops.
        # (unless AEX_SCORING_ENGINE=numpy: then windows are scored by the numpy engine only).
        on_startup=[
            *([warm_scoring] if settings.scoring_engine == "compiled" else []),
            reap_dead_metric_processes,
            freeze_startup_heap,
        ],
        on_shutdown=[metrics_process_exit],
        openapi_config=_openapi_config(),
        template_config=template_config(),
        request_max_body_size=limits.request_body_bytes_max,
        # The scope check and the query check, before any parameter is parsed (not guards:
        # serve/gateway/callers.py `admitting`).
        before_request=admitting(require_scope, refuse_unknown_query),
        request_class=StrictRequest,
        debug=False,
    )
    route_scopes(app)  # asserts that every route declares the scope it needs
    declare_security(app)
    describe(app)  # the market's shapes (serve/gateway/openapi.py)
    narrow_problems(app, unlimited=UNLIMITED_ROUTES)  # each route's own problem statuses
    document_locations(app)  # Location on 201s (serve/gateway/locations.py)
    return app


# The docs UI works with no network: Swagger UI's assets come from the swagger-ui-py package
# and are served by the exchange itself under /schema/assets (no CDN, no external favicon).
DOCS_ASSETS_PATH = "/schema/assets"


def _openapi_config() -> OpenAPIConfig:
    swagger = SwaggerRenderPlugin(
        js_url=f"{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{DOCS_ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{DOCS_ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{DOCS_ASSETS_PATH}/favicon-32x32.png'>",
        path="/swagger",
    )
    schemes: dict[str, SecurityScheme | Reference] = {
        name: SecurityScheme(**_scheme_fields(spec)) for name, spec in SECURITY_SCHEMES.items()
    }
    return OpenAPIConfig(
        title="AEX live exchange",
        version=aex.__version__,
        path="/schema",
        render_plugins=[swagger],
        components=Components(security_schemes=schemes),
    )


def _scheme_fields(spec: dict[str, str]) -> Any:  # SecurityScheme's keyword arguments
    renamed = {"in": "security_scheme_in", "bearerFormat": "bearer_format"}
    return {renamed.get(key, key): value for key, value in spec.items()}


def _docs_assets() -> Any:
    import swagger_ui

    static = Path(swagger_ui.__file__).parent / "static"
    return create_static_files_router(
        path=DOCS_ASSETS_PATH, directories=[static], include_in_schema=False, name="docs-assets"
    )


def _market_db(store: KeyStore) -> MarketDb:
    if isinstance(store, SqliteStore):
        return SqliteMarketDb(store)
    from serve.stores.postgres import PostgresStore

    assert isinstance(store, PostgresStore), type(store)
    return PostgresMarketDb(store)


class _Backends(NamedTuple):
    store: Any  # KeyStore and IdempotencyStore
    ledger: LedgerStore
    limiter: RateLimitStore
    cache: KeyCache


def _backends(settings: Settings, breakers: BreakerRegistry) -> _Backends:
    # SQLite and in-process state by default; PostgreSQL and Redis when configured.
    store: Any
    ledger: LedgerStore
    if settings.database_url is not None:
        from serve.settlement.postgres_ledger import PostgresLedger
        from serve.stores.postgres import PostgresStore

        store = PostgresStore(
            settings.database_url,
            schema=settings.database_schema,
            pool_max=settings.database_pool_max,
            breaker=breakers.get("postgres"),
        )
        ledger = PostgresLedger(store)
    else:
        store = SqliteStore(
            settings.database_path,
            synchronous=settings.sqlite_synchronous,
            busy_timeout_s=settings.sqlite_busy_timeout_s,
        )
        ledger = SqliteLedger(store)
    if settings.redis_url is None:
        return _Backends(store, ledger, GcraRateLimiter(), TtlKeyCache(settings.key_cache_ttl_s))
    from serve.stores.redis_shared import RedisKeyCache, RedisRateLimiter, redis_client

    client = redis_client(settings.redis_url)
    limiter = RedisRateLimiter(client, prefix=settings.redis_prefix, circuit=breakers.get("redis"))
    cache = RedisKeyCache(
        client,
        ttl_s=settings.key_cache_ttl_s,
        epoch=store.credentials_epoch,
        prefix=settings.redis_prefix,
        breaker=limiter.breaker,
    )
    return _Backends(store, ledger, limiter, cache)


def create_app(settings: Settings) -> ASGIApp:
    """The whole ASGI application: SQLite in `settings.data_dir`, or PostgreSQL and Redis."""
    breakers = BreakerRegistry(policy=settings.breaker_policy())
    store, ledger, limiter, cache = _backends(settings, breakers)
    authenticator = Authenticator(
        store,
        cache,
        operator_key=settings.operator_key,
        jwt_secret=settings.jwt_secret,
    )
    metrics = MarketMetrics()
    litestar_app: Any = build_litestar(store, settings, ledger, metrics, breakers)
    routes = RouteLabels(route.path for route in litestar_app.routes)
    app: Any = IdempotencyMiddleware(litestar_app, store=store)
    app = LocationMiddleware(app, route_of=routes.label)  # replays carry it too
    admission = Admission(
        metrics_public=settings.metrics_public,
        authenticator=authenticator,
        limiter=limiter,
        per_minute_override=settings.rate_limit_per_minute,
        per_day_override=settings.requests_per_day,
        burst=settings.rate_limit_burst,
        anonymous_per_minute=settings.anonymous_requests_per_minute,
    )
    # serve/gateway/pipeline.py: the spec's middleware stack, in one layer
    return Gateway(
        app,
        routes=routes,
        metrics=RequestMetrics(metrics, routes),
        admission=admission,
        cors=Cors(settings.cors_origins),
        timeout_s=settings.request_timeout_s,
        hot_routes=_hot_routes(litestar_app),
    )


def _hot_routes(litestar_app: Any) -> dict[str, HotRoute]:
    # Each with the scope its Litestar route declares: one declaration, both paths.
    needed = declared_scope_of(litestar_app, "GET", BALANCE_PATH)
    return {BALANCE_PATH: balance_hot_route(litestar_app.state.wallets, needed)}


def app_from_env() -> ASGIApp:
    """For `uvicorn --factory serve.app:app_from_env` (several workers): AEX_DATA_DIR. Each
    worker process sets up its own tracer provider here (serve/telemetry/tracing.py)."""
    from serve.telemetry import tracing

    tracing.configure_from_env()
    data_dir = Path(os.environ.get("AEX_DATA_DIR", "./data"))
    return create_app(Settings.from_env(data_dir=data_dir))
