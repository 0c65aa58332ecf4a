"""The dashboard's routes: sign-in and sign-out, the three views, their live fragments, SSE.

Pages are rendered by Litestar's template engine (jinja2, templates/ beside this file); the
only scripts are the files under static/ (dashboard.js and the vendored vega, vega-lite and
vega-embed). No page names an external URL. A view is a page whose `<main>` is its fragment;
dashboard.js listens on /dashboard/stream (SSE: a bare "changed" hint per market event, no
payload) and re-fetches the fragment, so everything the viewer sees is read for it alone.

At the edge the /dashboard paths take no API key (serve/gateway/middleware.py
PUBLIC_PREFIXES); `SessionMiddleware` (this router's) puts the session's read-only principal
in the request scope, and the application's scope guard then checks each route's declared
scope: `read` for every view, PUBLIC for the sign-in page and the static files.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.response import Redirect, ServerSentEvent, Template
from litestar.static_files import create_static_files_router

from aex.core import AccessScope
from serve.dashboard.sessions import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_TTL_S,
    Sessions,
    Viewer,
    csrf_token,
    new_token,
    same_token,
)
from serve.dashboard.views import Interest, LiveSource, not_found
from serve.gateway.asgi import PRINCIPAL_SCOPE_KEY, ASGIApp, Receive, Scope, Send
from serve.gateway.callers import PUBLIC, needs
from serve.gateway.problems import ProblemError
from serve.identity.security import Authenticator, PrincipalKind
from serve.notifications.events import Delivered, EventHub

PREFIX = "/dashboard"
STATIC = Path(__file__).parent / "static"
TEMPLATES = Path(__file__).parent / "templates"
VIEWER_SCOPE_KEY = "aex.dashboard.viewer"
HEARTBEAT_S = 15.0
STREAM_HINT_MIN_S = 1.0  # at most one refresh hint a second per open page
SIGN_IN_FIELD_MAX = 256
HINT_QUEUE_MAX = 1000
_READ = needs(AccessScope.READ)
# The browser may load and connect to this origin only (vega compiles expressions with
# Function: 'unsafe-eval'; vega-embed adds a style element: 'unsafe-inline' for styles).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline';"
        " img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none';"
        " base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SessionMiddleware:
    """Resolves the session cookie to its viewer (read-only principal) before the guard runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            token = _cookie(scope, SESSION_COOKIE)
            sessions: Sessions = scope["app"].state.dashboard_sessions
            viewer = await asyncio.to_thread(sessions.viewer, token) if token else None
            scope[VIEWER_SCOPE_KEY] = viewer
            if viewer is not None:
                scope[PRINCIPAL_SCOPE_KEY] = viewer.principal
            elif _is_page(scope):
                await _see_sign_in(send)
                return
        await self.app(scope, receive, send)


async def _see_sign_in(send: Send) -> None:
    headers = [(b"location", f"{PREFIX}/sign-in".encode()), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _is_page(scope: Scope) -> bool:
    path: str = scope["path"]
    return scope["method"] == "GET" and path.rstrip("/") in {
        PREFIX,
        f"{PREFIX}/operator",
        f"{PREFIX}/consumer",
        f"{PREFIX}/provider",
    } | ({path} if path.startswith((f"{PREFIX}/consumer/work/", f"{PREFIX}/provider/")) else set())


def _cookie(scope: Any, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                found, _, content = part.strip().partition("=")
                if found == name:
                    return str(content)
    return None


def _viewer(request: Request[Any, Any, Any]) -> Viewer:
    viewer = request.scope.get(VIEWER_SCOPE_KEY)
    assert isinstance(viewer, Viewer), "the guard admits only signed-in viewers"
    return viewer


def _secure(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https"


def _page(name: str, request: Request[Any, Any, Any], **context: Any) -> Template:
    found = request.scope.get(VIEWER_SCOPE_KEY)
    viewer = found if isinstance(found, Viewer) else None
    token = _cookie(request.scope, SESSION_COOKIE)
    context |= {
        "viewer": viewer,
        "kind": None if viewer is None else viewer.kind.value,
        "sign_out_token": csrf_token(token) if token and viewer else "",
        "ttl_minutes": SESSION_TTL_S // 60,
    }
    return Template(
        template_name=name, context=context, media_type=MediaType.HTML, headers=PAGE_HEADERS
    )


def _source(request: Request[Any, Any, Any]) -> LiveSource:
    found: LiveSource = request.app.state.dashboard_source
    return found


# -- sign-in and sign-out -------------------------------------------------------------------


@get("/sign-in", opt=needs(PUBLIC), include_in_schema=False, sync_to_thread=False)
def sign_in_page(request: Request[Any, Any, Any]) -> Template:
    token = new_token()
    page = _page("sign_in.html.j2", request, csrf=token, error=None)
    page.cookies.append(_csrf_cookie(token, _secure(request)))
    return page


def _csrf_cookie(token: str, secure: bool) -> Cookie:
    return Cookie(
        key=CSRF_COOKIE,
        value=token,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=secure,
        max_age=SESSION_TTL_S,
    )


@post("/sign-in", opt=needs(PUBLIC), include_in_schema=False, status_code=303)
async def sign_in(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    presented = str(form.get("csrf", ""))[:SIGN_IN_FIELD_MAX]
    api_key = str(form.get("api_key", "")).strip()[:SIGN_IN_FIELD_MAX]
    if not same_token(presented, _cookie(request.scope, CSRF_COOKIE)):
        raise ProblemError(403, "csrf-token-mismatch", "reload the sign-in page and try again")
    authenticator: Authenticator = request.app.state.dashboard_authenticator
    try:
        principal = await asyncio.to_thread(authenticator.authenticate, api_key or None, None)
    except ProblemError:
        principal = None
    if principal is None:
        token = new_token()
        page = _page("sign_in.html.j2", request, csrf=token, error="that key was not accepted")
        page.status_code = 401
        page.cookies.append(_csrf_cookie(token, _secure(request)))
        return page
    sessions: Sessions = request.app.state.dashboard_sessions
    session_token, viewer = await asyncio.to_thread(sessions.open, principal)
    response: Response[Any] = Redirect(f"{PREFIX}/{_home(viewer)}", status_code=303)
    response.cookies.append(
        Cookie(
            key=SESSION_COOKIE,
            value=session_token,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
            max_age=SESSION_TTL_S,
        )
    )
    response.cookies.append(_expired(CSRF_COOKIE))
    return response


def _expired(name: str) -> Cookie:
    return Cookie(key=name, value="", path=PREFIX, max_age=0, httponly=True, samesite="strict")


def _home(viewer: Viewer) -> str:
    if viewer.kind is PrincipalKind.OPERATOR:
        return "operator"
    if viewer.kind is PrincipalKind.PROVIDER:
        return "provider"
    return "consumer"


@post("/sign-out", opt=_READ, include_in_schema=False, status_code=303)
async def sign_out(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    token = _cookie(request.scope, SESSION_COOKIE)
    if token is None or not same_token(str(form.get("csrf", "")), csrf_token(token)):
        raise ProblemError(403, "csrf-token-mismatch", "sign out from the dashboard's own page")
    sessions: Sessions = request.app.state.dashboard_sessions
    await asyncio.to_thread(sessions.close, token)
    response: Response[Any] = Redirect(f"{PREFIX}/sign-in", status_code=303)
    response.cookies.append(_expired(SESSION_COOKIE))
    return response


# -- views ----------------------------------------------------------------------------------


@get("/", opt=_READ, include_in_schema=False, sync_to_thread=False)
def home(request: Request[Any, Any, Any]) -> Redirect:
    return Redirect(f"{PREFIX}/{_home(_viewer(request))}")


def _operator_only(viewer: Viewer) -> None:
    if viewer.kind is not PrincipalKind.OPERATOR:
        raise ProblemError(403, "operator-credential-required", "sign in with the operator key")


def _tenant_only(viewer: Viewer) -> None:
    if viewer.kind is not PrincipalKind.TENANT:
        raise ProblemError(403, "tenant-credential-required", "sign in with a tenant API key")


@get("/operator", opt=_READ, include_in_schema=False, sync_to_thread=True)
def operator_page(request: Request[Any, Any, Any], fragment: bool = False) -> Template:
    _operator_only(_viewer(request))
    data = _source(request).operator()
    return _page("operator.html.j2", request, data=data, fragment=fragment)


@get("/consumer", opt=_READ, include_in_schema=False, sync_to_thread=True)
def consumer_page(request: Request[Any, Any, Any], fragment: bool = False) -> Template:
    viewer = _viewer(request)
    _tenant_only(viewer)
    data = _source(request).consumer(viewer.principal)
    return _page("consumer.html.j2", request, data=data, fragment=fragment)


@get("/consumer/work/{work_id:str}", opt=_READ, include_in_schema=False, sync_to_thread=True)
def work_page(request: Request[Any, Any, Any], work_id: str, fragment: bool = False) -> Template:
    viewer = _viewer(request)
    _tenant_only(viewer)
    data = _source(request).work(viewer.principal, work_id)
    return _page("work.html.j2", request, data=data, fragment=fragment)


@get("/provider", opt=_READ, include_in_schema=False, sync_to_thread=True)
def providers_page(request: Request[Any, Any, Any]) -> Response[Any]:
    viewer = _viewer(request)
    if viewer.kind is PrincipalKind.OPERATOR:
        raise ProblemError(403, "tenant-credential-required", "use a tenant or provider key")
    ids = _source(request).provider_ids(viewer.principal)
    if len(ids) == 1:
        return Redirect(f"{PREFIX}/provider/{ids[0]}")
    return _page("providers.html.j2", request, providers=ids, fragment=False)


@get("/provider/{provider_id:str}", opt=_READ, include_in_schema=False, sync_to_thread=True)
def provider_page(
    request: Request[Any, Any, Any], provider_id: str, fragment: bool = False
) -> Template:
    viewer = _viewer(request)
    if viewer.kind is PrincipalKind.OPERATOR:
        raise not_found("provider")
    data = _source(request).provider(viewer.principal, provider_id)
    return _page("provider.html.j2", request, data=data, fragment=fragment)


@get("/stream", opt=_READ, include_in_schema=False, sync_to_thread=True)
def stream(request: Request[Any, Any, Any]) -> ServerSentEvent:
    """A hint ("changed", no payload) per market event that concerns the viewer (the operator:
    every one); the page then re-reads its own view."""
    viewer = _viewer(request)
    interest = Interest(_source(request), viewer.principal)
    return ServerSentEvent(_hints(request.app.state.hub, interest, viewer.expires_at_ms))


async def _hints(
    hub: EventHub, interest: Interest, expires_at_ms: int
) -> AsyncIterator[dict[str, str]]:
    queue: asyncio.Queue[Delivered] = asyncio.Queue(HINT_QUEUE_MAX)

    def listener(event: Delivered) -> None:
        if not queue.full():  # a hint dropped is harmless: the next one re-reads everything
            queue.put_nowait(event)

    hub.subscribe(listener)
    try:
        yield {"event": "ready", "data": "{}"}
        while time.time() * 1000 < expires_at_ms:
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                yield {"comment": "keep-alive"}
                continue
            batch = [event]
            while not queue.empty():
                batch.append(queue.get_nowait())
            if await asyncio.to_thread(_any_concerns, interest, batch):
                yield {"event": "changed", "data": "{}"}
                await asyncio.sleep(STREAM_HINT_MIN_S)
        yield {"event": "expired", "data": "{}"}
    finally:
        hub.unsubscribe(listener)


def _any_concerns(interest: Interest, batch: list[Delivered]) -> bool:
    # Every event is looked at, in order: a new work's id, once learned, names its bids.
    return any([interest.concerns(event) for event in batch])


def dashboard_router() -> Router:
    static = create_static_files_router(
        path="/static",
        directories=[STATIC],
        include_in_schema=False,
        name="dashboard-static",
        opt=needs(PUBLIC),
    )
    return Router(
        path=PREFIX,
        route_handlers=[
            sign_in_page,
            sign_in,
            sign_out,
            home,
            operator_page,
            consumer_page,
            work_page,
            providers_page,
            provider_page,
            stream,
            static,
        ],
        # A plain ASGI layer (the typing of Litestar's middleware list wants its own scopes).
        middleware=[cast(Any, SessionMiddleware)],
    )
