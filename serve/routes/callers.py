"""Dependencies naming the caller a route requires; a wrong kind of credential answers 403.

Operator routes refuse tenant and provider credentials; tenant routes refuse the operator key
(it has no tenant) and provider keys (they act only on their own provider's subscriptions).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import CacheControlHeader

from serve.middleware._asgi import PRINCIPAL_SCOPE_KEY
from serve.problems import ProblemError
from serve.security import Principal, PrincipalKind

# Routes whose answer carries a secret shown once (an API key, a provider's key and secrets, a
# JWT) answer `Cache-Control: no-store`; the idempotency layer stores only a digest of them.
SHOWN_ONCE = CacheControlHeader(no_store=True)


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
        raise ProblemError(403, "operator-credential-required", "use the operator key")
    return principal
