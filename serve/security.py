"""Authentication at the edge: API keys (tenant, provider), JWT HS256, the operator key.

Spec "Authentication in Production": keys are "aexk_" + 64 hex (tenant) or "aex_pk_live_" +
64 hex (provider), stored as SHA-256 digests only; a presented key is hashed, looked up by
digest and compared in constant time. Validated keys are cached for 5 minutes; every
revocation, suspension or plan change bumps a credentials epoch in the store, which each
worker reads on every request (one indexed point read) and which clears its cache when it
moved: a revocation is effective at once, in every worker. JWTs: HS256 only (`alg: none`,
HS512, RS256 ... all refused), signature, `exp`, `iat` and `iss == "aex-identity"` required,
plus `tenant_id` and `scopes`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

import jwt

from aex.core import (
    DEFAULT_PLAN,
    CredentialKind,
    Plan,
    Rejected,
    credential_digest,
    credential_kind,
    format_credential,
)
from serve.problems import FieldError, ProblemError, problem_for_rejected
from serve.stores.base import CredentialMatch, KeyCache, KeyStore, TenantRecord

JWT_ISSUER = "aex-identity"
JWT_ALGORITHMS = ["HS256"]  # an allow-list of one: never the token's own `alg`
JWT_REQUIRED_CLAIMS = ["tenant_id", "scopes", "iss", "exp", "iat"]
ALL_SCOPES = ("*",)


class PrincipalKind(StrEnum):
    TENANT = "TENANT"
    PROVIDER = "PROVIDER"
    OPERATOR = "OPERATOR"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, learned from the credential only (never from a header)."""

    kind: PrincipalKind
    tenant_id: str | None
    plan: Plan
    key_id: str | None = None
    provider_id: str | None = None
    scopes: tuple[str, ...] = ALL_SCOPES
    # The exact credential presented: "key:<key_id>", "jwt:<SHA-256 of the token>" or
    # "operator". What an Idempotency-Key record belongs to (never the tenant, never an IP).
    credential_id: str | None = None


OPERATOR = Principal(PrincipalKind.OPERATOR, None, Plan.ENTERPRISE, credential_id="operator")


def new_credential(kind: CredentialKind) -> tuple[str, str]:
    """A fresh credential and its stored digest; the plaintext is shown once, never stored."""
    credential = format_credential(kind, secrets.token_hex(32))
    return credential, credential_digest(credential)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


# Unique ids without a syscall each: 16 random hex characters drawn once per process, then a
# counter (itertools.count is atomic under the GIL). Request ids and fresh operation ids.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count()


def next_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Authenticator:
    def __init__(self, store: KeyStore, cache: KeyCache, *, operator_key: str, jwt_secret: str):
        self._store = store
        self._cache = cache
        self._operator_key = operator_key.encode()
        self._jwt_secret = jwt_secret
        self._epoch = store.credentials_epoch()
        self._tenants: dict[str, tuple[float, TenantRecord | None]] = {}

    def authenticate(self, api_key: str | None, authorization: str | None) -> Principal | None:
        """The caller's principal, None when no credential was presented; raises ProblemError."""
        self._check_epoch()
        if api_key is not None:
            return self._api_key(api_key)
        if authorization is not None:
            return self._bearer(authorization)
        return None

    def _check_epoch(self) -> None:
        epoch = self._store.credentials_epoch()
        if epoch != self._epoch:
            self._cache.clear()
            self._tenants.clear()
            self._epoch = epoch

    def _api_key(self, presented: str) -> Principal:
        if hmac.compare_digest(presented.encode(), self._operator_key):
            return OPERATOR
        kind = credential_kind(presented)
        if isinstance(kind, Rejected):
            raise _unauthorized("credential-malformed", "X-API-Key")
        if kind in {CredentialKind.PROVIDER_SECRET, CredentialKind.WEBHOOK_SECRET}:
            raise _unauthorized("credential-not-accepted", "X-API-Key")
        digest = credential_digest(presented)
        match = self._lookup(digest)
        if match is None or not hmac.compare_digest(match.key.digest, digest):
            raise _unauthorized("credential-invalid", "X-API-Key")
        if match.key.revoked_at_ms is not None:
            raise _unauthorized("credential-revoked", "X-API-Key")
        _check_active(match.tenant)
        principal_kind = PrincipalKind.PROVIDER if match.key.kind == "PROVIDER" else None
        return Principal(
            principal_kind or PrincipalKind.TENANT,
            match.tenant.tenant_id,
            match.tenant.plan,
            key_id=match.key.key_id,
            provider_id=match.key.provider_id,
            credential_id=f"key:{match.key.key_id}",
        )

    def _lookup(self, digest: str) -> CredentialMatch | None:
        now_s = time.monotonic()
        match = self._cache.get(digest, now_s=now_s)
        if match is None:
            match = self._store.find_credential(digest)
            if match is not None:
                self._cache.put(digest, match, now_s=now_s)
        return match

    def _bearer(self, authorization: str) -> Principal:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("credential-malformed", "Authorization")
        try:
            claims = jwt.decode(
                token.strip(),
                self._jwt_secret,
                algorithms=JWT_ALGORITHMS,
                issuer=JWT_ISSUER,
                options={"require": JWT_REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as error:
            raise _unauthorized("token-expired", "Authorization") from error
        except jwt.PyJWTError as error:
            raise _unauthorized("token-invalid", "Authorization", str(error)) from error
        tenant_id, scopes = claims["tenant_id"], claims["scopes"]
        if not isinstance(tenant_id, str) or not isinstance(scopes, list):
            raise _unauthorized("token-invalid", "Authorization", "tenant_id, scopes")
        tenant = self._tenant(tenant_id)
        if tenant is None:
            raise _unauthorized("token-invalid", "Authorization", "unknown tenant")
        _check_active(tenant)
        return Principal(
            PrincipalKind.TENANT,
            tenant_id,
            tenant.plan,
            scopes=tuple(map(str, scopes)),
            credential_id="jwt:" + hashlib.sha256(token.strip().encode()).hexdigest(),
        )

    def _tenant(self, tenant_id: str) -> TenantRecord | None:
        now_s = time.monotonic()
        cached = self._tenants.get(tenant_id)
        if cached is not None and cached[0] > now_s:
            return cached[1]
        tenant = self._store.get_tenant(tenant_id)
        if len(self._tenants) > 100_000:
            self._tenants.clear()
        self._tenants[tenant_id] = (now_s + 300.0, tenant)
        return tenant


def issue_jwt(
    secret: str, tenant_id: str, *, scopes: tuple[str, ...], ttl_s: int, now_s: int
) -> str:
    """Signs a session token (the dashboard's); the gateway accepts exactly these."""
    claims = {
        "tenant_id": tenant_id,
        "scopes": list(scopes),
        "iss": JWT_ISSUER,
        "iat": now_s,
        "exp": now_s + ttl_s,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def _check_active(tenant: TenantRecord) -> None:
    # Spec: "Suspended tenants are blocked at the gateway (no service access)".
    if tenant.status != "ACTIVE":
        raise ProblemError(403, "tenant-suspended", "this tenant is suspended")


def _unauthorized(slug: str, field: str, detail: str = "") -> ProblemError:
    return ProblemError(
        401,
        slug,
        detail or "the credential was refused",
        errors=(FieldError(field, slug.replace("-", "_")),),
        headers={"WWW-Authenticate": 'Bearer realm="aex", ApiKey header="X-API-Key"'},
    )


assert DEFAULT_PLAN in Plan
__all__ = [
    "OPERATOR",
    "Authenticator",
    "Principal",
    "PrincipalKind",
    "issue_jwt",
    "new_credential",
    "new_id",
    "next_id",
    "now_ms",
    "problem_for_rejected",
]
