"""The baseline: a bare Litestar JSON endpoint, served by uvicorn exactly like `aex serve`."""

from __future__ import annotations

from litestar import Litestar, get


@get("/bare", sync_to_thread=False)
def bare() -> dict[str, str]:
    return {"status": "ok"}


app = Litestar(route_handlers=[bare])
