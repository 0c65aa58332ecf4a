"""Authentication at the edge: API keys (tenant, provider), JWT HS256, the operator key.

Spec "Authentication in Production": keys are "aexk_" + 64 hex (tenant) or "aex_pk_live_" +
64 hex (provider), stored as SHA-256 digests only; a presented key is hashed, looked up by
digest and compared in constant time. Validated keys are cached for 5 minutes; every
revocation, suspension or plan change bumps a credentials epoch in the store, which each
worker reads on every request (one indexed point read) and which clears its cache when it
moved: a revocation is effective at once, in every worker. JWTs: HS256 only (`alg: none`,
HS512, RS256 ... all refused), signature, `exp`, `iat` and `iss == "aex-identity"` required,
plus `tenant_id`, `scopes` and `key_id`: the tenant API key that minted the token (directly or
through another token). A token lives no longer than that key: revoking or rotating the key
makes its tokens 401 at once (the same credentials epoch). The operator key is accepted as
`X-API-Key` or as `Authorization: Bearer` (what a Prometheus scrape config can send).

Scopes (aex/core/credentials.py): a tenant key holds every tenant scope, a provider key the
agent's, the operator key all; a JWT the ones it was minted with (a subset of the minter's).
"""

from __future__ import annotations

import hmac
import itertools
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

import jwt

from aex.core import (
    ALL_SCOPES,
    DEFAULT_PLAN,
    PROVIDER_KEY_SCOPES,
    TENANT_KEY_SCOPES,
    AccessScope,
    CredentialKind,
    Plan,
    Rejected,
    credential_digest,
    credential_kind,
    format_credential,
    grant_scopes,
)
from serve.gateway.problems import FieldError, ProblemError, problem_for_rejected
from serve.gateway.schemas import TokenCreate, TokenCreated
from serve.stores.base import CredentialMatch, KeyCache, KeyRecord, KeyStore, TenantRecord

JWT_ISSUER = "aex-identity"
JWT_ALGORITHMS = ["HS256"]  # an allow-list of one: never the token's own `alg`
JWT_REQUIRED_CLAIMS = ["tenant_id", "scopes", "key_id", "jti", "iss", "exp", "iat"]
_TOKEN_SCOPES = {scope.value: scope for scope in TENANT_KEY_SCOPES}
# Tenants and their keys are re-read after this long, or at once when the epoch moves.
_CACHE_TTL_S = 300.0
_CACHE_ENTRIES_MAX = 100_000


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
    key_id: str | None = None  # the API key presented, or the one that minted the JWT
    provider_id: str | None = None
    scopes: tuple[AccessScope, ...] = ()  # none unless the credential grants them
    token_expires_at_s: int | None = None  # a JWT's `exp`: what it mints expires no later
    # The exact credential presented: the key's id, "jwt:" + a token's `jti` (a token and the
    # key that minted it are different credentials with different scopes), or "operator".
    credential_id: str | None = None


OPERATOR = Principal(
    PrincipalKind.OPERATOR, None, Plan.ENTERPRISE, scopes=ALL_SCOPES, credential_id="operator"
)


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


# Principals kept for the credentials in the key cache (a few per active key): beyond, all go.
PRINCIPALS_KEPT_MAX = 10_000


class Authenticator:
    def __init__(self, store: KeyStore, cache: KeyCache, *, operator_key: str, jwt_secret: str):
        self._store = store
        self._cache = cache
        self._operator_key = operator_key.encode()
        self._jwt_secret = jwt_secret
        self._epoch = store.credentials_epoch()
        self._tenants: dict[str, tuple[float, TenantRecord | None]] = {}
        self._keys: dict[str, tuple[float, tuple[KeyRecord, ...]]] = {}
        # The principal of each credential match the cache gave: a function of the match alone,
        # so it is answered again while the cache gives the same match (the same object).
        self._principals: dict[str, tuple[CredentialMatch, Principal]] = {}

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
            self._keys.clear()
            self._principals.clear()
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
        known = self._principals.get(digest)
        if known is not None and known[0] is match:
            return known[1]
        principal = self._key_principal(digest, match)
        if len(self._principals) >= PRINCIPALS_KEPT_MAX:
            self._principals.clear()
        if match is not None:
            self._principals[digest] = (match, principal)
        return principal

    def _key_principal(self, digest: str, match: CredentialMatch | None) -> Principal:
        if match is None or not hmac.compare_digest(match.key.digest, digest):
            raise _unauthorized("credential-invalid", "X-API-Key")
        if match.key.revoked_at_ms is not None:
            raise _unauthorized("credential-revoked", "X-API-Key")
        _check_active(match.tenant)
        provider = match.key.kind == "PROVIDER"
        return Principal(
            PrincipalKind.PROVIDER if provider else PrincipalKind.TENANT,
            match.tenant.tenant_id,
            match.tenant.plan,
            key_id=match.key.key_id,
            provider_id=match.key.provider_id,
            scopes=PROVIDER_KEY_SCOPES if provider else TENANT_KEY_SCOPES,
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
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("credential-malformed", "Authorization")
        if hmac.compare_digest(token.encode(), self._operator_key):
            return OPERATOR
        try:
            claims = jwt.decode(
                token,
                self._jwt_secret,
                algorithms=JWT_ALGORITHMS,
                issuer=JWT_ISSUER,
                options={"require": JWT_REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as error:
            raise _unauthorized("token-expired", "Authorization") from error
        except jwt.PyJWTError as error:
            raise _unauthorized("token-invalid", "Authorization", str(error)) from error
        tenant_id, key_id, token_id = claims["tenant_id"], claims["key_id"], claims["jti"]
        if not all(isinstance(claim, str) for claim in (tenant_id, key_id, token_id)):
            raise _unauthorized("token-invalid", "Authorization", "tenant_id, key_id, jti")
        granted = _token_scopes(claims["scopes"])
        tenant = self._tenant(tenant_id)
        if tenant is None:
            raise _unauthorized("token-invalid", "Authorization", "unknown tenant")
        self._check_minting_key(tenant_id, key_id)
        _check_active(tenant)
        return Principal(
            PrincipalKind.TENANT,
            tenant_id,
            tenant.plan,
            key_id=key_id,
            scopes=granted,
            token_expires_at_s=int(claims["exp"]),
            credential_id=f"jwt:{token_id}",
        )

    def _check_minting_key(self, tenant_id: str, key_id: str) -> None:
        # The token dies with its key: revoked (or rotated away) means 401, like the key.
        key = next((k for k in self._tenant_keys(tenant_id) if k.key_id == key_id), None)
        if key is None or key.kind != "TENANT":
            raise _unauthorized("token-invalid", "Authorization", "unknown key_id")
        if key.revoked_at_ms is not None:
            raise _unauthorized("credential-revoked", "Authorization", "its key was revoked")

    def _tenant_keys(self, tenant_id: str) -> tuple[KeyRecord, ...]:
        now_s = time.monotonic()
        cached = self._keys.get(tenant_id)
        if cached is not None and cached[0] > now_s:
            return cached[1]
        keys = tuple(self._store.list_keys(tenant_id))
        if len(self._keys) > _CACHE_ENTRIES_MAX:
            self._keys.clear()
        self._keys[tenant_id] = (now_s + _CACHE_TTL_S, keys)
        return keys

    def _tenant(self, tenant_id: str) -> TenantRecord | None:
        now_s = time.monotonic()
        cached = self._tenants.get(tenant_id)
        if cached is not None and cached[0] > now_s:
            return cached[1]
        tenant = self._store.get_tenant(tenant_id)
        if len(self._tenants) > _CACHE_ENTRIES_MAX:
            self._tenants.clear()
        self._tenants[tenant_id] = (now_s + _CACHE_TTL_S, tenant)
        return tenant


def _token_scopes(scopes: object) -> tuple[AccessScope, ...]:
    # Only what /v1/tokens mints: tenant scope names, at least one, no wildcard (expanded at
    # minting), never `operator`. Anything else is a token this exchange did not issue.
    if not isinstance(scopes, list) or not scopes:
        raise _unauthorized("token-invalid", "Authorization", "scopes")
    if not all(isinstance(name, str) and name in _TOKEN_SCOPES for name in scopes):
        raise _unauthorized("token-invalid", "Authorization", "scopes")
    held = {_TOKEN_SCOPES[name] for name in scopes}
    return tuple(scope for scope in TENANT_KEY_SCOPES if scope in held)


def issue_jwt(
    secret: str,
    tenant_id: str,
    *,
    key_id: str,
    scopes: tuple[AccessScope, ...],
    expires_at_s: int,
    now_s: int,
) -> str:
    """Signs a session token (the dashboard's); the gateway accepts exactly these."""
    assert scopes
    assert all(scope in TENANT_KEY_SCOPES for scope in scopes)
    assert expires_at_s > now_s
    claims = {
        "tenant_id": tenant_id,
        "key_id": key_id,
        "jti": secrets.token_hex(16),
        "scopes": [scope.value for scope in scopes],
        "iss": JWT_ISSUER,
        "iat": now_s,
        "exp": expires_at_s,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def mint_token(caller: Principal, body: TokenCreate, secret: str, *, now_s: int) -> TokenCreated:
    """POST /v1/tokens: scopes granted by the core (never broader than the caller's), bound to
    the caller's tenant key, and never outliving the token that asks (if one does)."""
    assert caller.kind is PrincipalKind.TENANT
    assert caller.tenant_id is not None
    assert caller.key_id is not None
    granted = grant_scopes(body.scopes, caller.scopes)
    if isinstance(granted, Rejected):
        raise problem_for_rejected(granted)
    expires_at_s = now_s + body.ttl_s
    if caller.token_expires_at_s is not None:
        expires_at_s = min(expires_at_s, caller.token_expires_at_s)
    if expires_at_s <= now_s:  # the asking token expires this very second
        raise _unauthorized("token-expired", "Authorization")
    token = issue_jwt(
        secret,
        caller.tenant_id,
        key_id=caller.key_id,
        scopes=granted,
        expires_at_s=expires_at_s,
        now_s=now_s,
    )
    return TokenCreated(token, "Bearer", expires_at_s - now_s, [s.value for s in granted])


def require_scopes_to_mint(caller: Principal, minted: tuple[AccessScope, ...]) -> None:
    """A credential that mints another (an API key, a provider's key) holds at least what the
    new one will: a narrow JWT cannot mint a full API key."""
    granted = grant_scopes([scope.value for scope in minted], caller.scopes)
    if isinstance(granted, Rejected):
        raise problem_for_rejected(granted)


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
    "mint_token",
    "new_credential",
    "new_id",
    "next_id",
    "now_ms",
    "problem_for_rejected",
    "require_scopes_to_mint",
]
