"""The live market dashboard, served by the exchange itself (docs/operations.md "Reading the
dashboard"): server-rendered pages (Litestar templates, jinja2), a small script, vendored
vega-lite; a sign-in with an API key into a 15-minute read-only session."""

from __future__ import annotations

from typing import Any

from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from serve.dashboard.routes import TEMPLATES, dashboard_router
from serve.dashboard.sessions import Sessions
from serve.dashboard.views import LiveSource
from serve.identity.security import Authenticator
from serve.market.usecases import Market
from serve.settings import Settings
from serve.settlement.wallets import Wallets
from serve.stores.base import KeyStore
from serve.stores.memory import TtlKeyCache

__all__ = ["dashboard_router", "dashboard_state", "template_config"]


def template_config() -> TemplateConfig[Any]:
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine)


def dashboard_state(
    store: KeyStore, settings: Settings, market: Market, wallets: Wallets
) -> dict[str, Any]:
    """The application state the dashboard's routes read: its sessions, its data source and
    the authenticator that checks the key presented at sign-in (the gateway's own rules)."""
    authenticator = Authenticator(
        store,
        TtlKeyCache(settings.key_cache_ttl_s),
        operator_key=settings.operator_key,
        jwt_secret=settings.jwt_secret,
    )
    return {
        "dashboard_sessions": Sessions(market.db, store),
        "dashboard_source": LiveSource(market, wallets),
        "dashboard_authenticator": authenticator,
    }
