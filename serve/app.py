"""The Litestar application factory: routes, middleware and the problem+json mapping."""

from __future__ import annotations

from litestar import Litestar, get

from serve.settings import Settings


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app(settings: Settings) -> Litestar:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Litestar(route_handlers=[health])
