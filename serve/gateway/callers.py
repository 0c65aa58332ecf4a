"""What a route requires of its caller: a kind of credential (a dependency) and a scope (the
`opt` every route declares, checked by one application guard before the handler runs).

Kinds: operator routes refuse tenant and provider credentials; tenant routes refuse the
operator key (it has no tenant) and provider keys (they act only on their own provider's
subscriptions). Scopes (aex/core/credentials.py `AccessScope`): a route declares the one it
needs with `opt=needs(...)`; `require_scope` answers 403 `insufficient-scope` to a credential
that does not hold it (a `read` JWT cannot withdraw). `PUBLIC` routes take no credential.
The table in docs/api.md is generated from these declarations (tools/render_scopes.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, NamedTuple

from litestar import Litestar, Request
from litestar.connection import ASGIConnection
from litestar.datastructures import CacheControlHeader
from litestar.handlers.base import BaseRouteHandler

from aex.core import AccessScope
from serve.gateway.asgi import PRINCIPAL_SCOPE_KEY
from serve.gateway.problems import FieldError, ProblemError
from serve.identity.security import Principal, PrincipalKind

# Routes whose answer carries a secret shown once (an API key, a provider's key and secrets, a
# JWT) answer `Cache-Control: no-store`; the idempotency layer stores only a digest of them.
SHOWN_ONCE = CacheControlHeader(no_store=True)

SCOPE_OPT: Final = "aex_scope"
# A route that is public when an application setting (a key of the app state) says so.
PUBLIC_WHEN_OPT: Final = "aex_public_when"
PUBLIC: Final = "public"
OPENAPI_PREFIX: Final = "/schema"


def needs(scope: AccessScope | str, *, public_when: str | None = None) -> dict[str, Any]:
    """A route's `opt`: the scope it needs (or PUBLIC), optionally public under a setting."""
    assert scope == PUBLIC or isinstance(scope, AccessScope), scope
    opt: dict[str, Any] = {SCOPE_OPT: scope}
    if public_when is not None:
        opt[PUBLIC_WHEN_OPT] = public_when
    return opt


def declared_scope(handler: BaseRouteHandler) -> AccessScope | str | None:
    found: AccessScope | str | None = handler.opt.get(SCOPE_OPT)
    return found


class RouteScope(NamedTuple):
    method: str
    path: str  # the route template, /v1/work/{work_id}
    scope: str  # an AccessScope value or PUBLIC
    public_when: str | None


def route_scopes(app: Litestar) -> list[RouteScope]:
    """Every route's declared scope, sorted by path then method: docs/api.md's table.

    Asserts that each route declares one: a route without a declaration is a bug, refused
    when the application is built (Litestar's own OpenAPI pages and automatic OPTIONS
    answers are the only routes without, and need no credential)."""
    table: list[RouteScope] = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            methods = sorted(handler.http_methods)
            if methods == ["OPTIONS"] or route.path_format.startswith(OPENAPI_PREFIX):
                continue
            scope = declared_scope(handler)
            assert scope is not None, f"{methods} {route.path_format} declares no scope"
            for method in methods:
                table.append(
                    RouteScope(
                        method, route.path_format, str(scope), handler.opt.get(PUBLIC_WHEN_OPT)
                    )
                )
    return sorted(table, key=lambda row: (row.path, row.method))


def declared_scope_of(app: Litestar, method: str, path: str) -> AccessScope | str | None:
    """The scope that the route `method path` (its template) declares; None for no route."""
    for route in app.routes:
        if route.path_format != path:
            continue
        for handler in getattr(route, "route_handlers", ()):
            if method in handler.http_methods:
                return declared_scope(handler)
    return None


# OpenAPI security schemes (components.securitySchemes), named by what the caller presents. The
# operator key travels in the same header as a tenant or provider key (or as a Bearer token).
API_KEY_SCHEME: Final = "apiKey"
BEARER_SCHEME: Final = "bearerJwt"
OPERATOR_SCHEME: Final = "operatorKey"
SECURITY_SCHEMES: Final[dict[str, dict[str, str]]] = {
    API_KEY_SCHEME: {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "A tenant or provider API key (aex_live_...)",
    },
    BEARER_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT from POST /v1/auth/token (HS256, scopes a subset of the minter's)",
    },
    OPERATOR_SCHEME: {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The operator key (data dir operator.key or AEX_OPERATOR_KEY)",
    },
}


def declare_security(app: Litestar) -> None:
    """Each route's OpenAPI `security`, from the scope it declares: operator routes the operator
    key, other authenticated routes a tenant or provider key or a JWT, public routes none."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            scope = declared_scope(handler)
            if scope is None or scope == PUBLIC or handler.opt.get(PUBLIC_WHEN_OPT):
                continue
            if scope is AccessScope.OPERATOR:
                handler.security = [{OPERATOR_SCHEME: []}]
            else:
                handler.security = [{API_KEY_SCHEME: []}, {BEARER_SCHEME: []}]


def admitting(
    *checks: Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None],
) -> Callable[[Request[Any, Any, Any]], Awaitable[None]]:
    """The application's `before_request` hook: runs each of `checks` (guard-shaped: the
    connection and its route handler; a refusal raises) before the handler's parameters are
    parsed. In place of Litestar guards, which cost per request a copy of the route handler
    per guard, and a thread hop for each one that is a plain function."""

    async def admit(request: Request[Any, Any, Any]) -> None:
        handler = request.route_handler
        for check in checks:
            check(request, handler)

    return admit


def require_scope(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The application's guard: the caller's credential holds the route's declared scope.

    Litestar's own handlers (the OpenAPI pages, automatic OPTIONS) declare none; serve.app
    asserts at startup that every other route does (tests/serve/test_scopes.py too)."""
    needed = declared_scope(handler)
    if needed is None or needed == PUBLIC:
        return
    principal = connection.scope.get(PRINCIPAL_SCOPE_KEY)
    if principal is None:
        setting = handler.opt.get(PUBLIC_WHEN_OPT)
        if setting is not None and connection.app.state.get(setting):
            return
        raise ProblemError(401, "credential-missing", "send X-API-Key or a Bearer JWT")
    assert isinstance(principal, Principal)
    if needed is AccessScope.OPERATOR and principal.kind is not PrincipalKind.OPERATOR:
        raise _operator_required()
    if needed not in principal.scopes:
        raise ProblemError(
            403,
            "insufficient-scope",
            f"this route needs the {needed!s} scope",
            errors=(FieldError("scopes", "insufficient_scope"),),
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed!s}"'},
        )


def _principal(request: Request[Any, Any, Any]) -> Principal:
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    assert isinstance(principal, Principal), "the auth middleware runs before every route"
    return principal


def tenant_caller(request: Request[Any, Any, Any]) -> Principal:
    principal = _principal(request)
    if principal.kind is not PrincipalKind.TENANT:
        raise ProblemError(403, "tenant-credential-required", "use a tenant API key or JWT")
    return principal


def provider_or_tenant_caller(request: Request[Any, Any, Any]) -> Principal:
    principal = _principal(request)
    if principal.kind is PrincipalKind.OPERATOR:
        raise ProblemError(403, "tenant-credential-required", "use a tenant or provider key")
    return principal


def operator_caller(request: Request[Any, Any, Any]) -> Principal:
    principal = _principal(request)
    if principal.kind is not PrincipalKind.OPERATOR:
        raise _operator_required()
    return principal


def _operator_required() -> ProblemError:
    return ProblemError(403, "operator-credential-required", "use the operator key")
