"""The dashboard over a market-log DuckDB file (`aex dashboard --log RUN.duckdb`): the same
pages as the live exchange's, read from a simulation run or an `aex export`, so a researcher
looks at a simulated market the way an operator looks at the live one.

A local, read-only tool: no sign-in (whoever can read the file sees it all), bound to
127.0.0.1 by default, no live stream (the log does not change). Ticks stand for minutes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.exceptions import HTTPException
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router

from serve.dashboard import template_config
from serve.dashboard.routes import PAGE_HEADERS, STATIC
from serve.dashboard.views import LogSource
from serve.gateway.problems import problem_response

LOG_LINKS = {"work_link": "/dashboard/work/", "provider_link": "/dashboard/provider/"}


def _page(name: str, **context: Any) -> Template:
    context |= {"viewer": None, "kind": None, "sign_out_token": "", "fragment": False}
    context |= LOG_LINKS
    return Template(
        template_name=name, context=context, media_type=MediaType.HTML, headers=PAGE_HEADERS
    )


def _source(request: Request[Any, Any, Any]) -> LogSource:
    found: LogSource = request.app.state.source
    return found


@get(["/", "/dashboard"], sync_to_thread=False, include_in_schema=False)
def home() -> Redirect:
    return Redirect("/dashboard/operator")


@get("/dashboard/operator", sync_to_thread=True, include_in_schema=False)
def operator_page(request: Request[Any, Any, Any]) -> Template:
    source = _source(request)
    return _page("operator.html.j2", data=source.operator(), works=source.works())


@get("/dashboard/work/{work_id:str}", sync_to_thread=True, include_in_schema=False)
def work_page(request: Request[Any, Any, Any], work_id: str) -> Template:
    return _page("work.html.j2", data=_source(request).work(work_id))


@get("/dashboard/provider/{provider_id:str}", sync_to_thread=True, include_in_schema=False)
def provider_page(request: Request[Any, Any, Any], provider_id: str) -> Template:
    return _page("provider.html.j2", data=_source(request).provider(provider_id))


def log_app(path: Path, run_id: int | None = None) -> Litestar:
    """A Litestar app showing one run of the market log at `path` (the first run by default)."""
    static = create_static_files_router(
        path="/dashboard/static", directories=[STATIC], include_in_schema=False
    )
    return Litestar(
        route_handlers=[home, operator_page, work_page, provider_page, static],
        state=State({"source": LogSource(path, run_id)}),
        template_config=template_config(),
        exception_handlers={HTTPException: problem_response, Exception: problem_response},
        openapi_config=None,
        debug=False,
    )
