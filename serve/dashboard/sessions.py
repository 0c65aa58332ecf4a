"""Dashboard sessions: an API key signs in once; a short-lived, read-only cookie session follows.

- The cookie carries a random token (32 bytes); the database keeps its SHA-256 digest only
  (`dashboard_sessions`, migration 9), so a copy of the database signs nobody in.
- A session lives `SESSION_TTL_S` (15 minutes) from sign-in, never renewed; sign-out deletes
  it. Any revocation, suspension or plan change (the credentials epoch moves) ends every
  session at once: the next request finds the epoch moved and signs the viewer out.
- Its principal holds the `read` scope alone, whatever the key held: the dashboard reads and
  never writes market state.
- CSRF: the session cookie is SameSite=Strict and HttpOnly; every form POST (sign-in and
  sign-out) also carries a token the page was rendered with: for sign-in the double-submitted
  `aex_dash_csrf` cookie, for sign-out a digest of the session token (`csrf_token`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Final

from aex.core import AccessScope, Plan
from serve.identity.security import Principal, PrincipalKind, now_ms
from serve.stores.base import KeyStore
from serve.stores.market_db import MarketDb

SESSION_COOKIE: Final = "aex_dash_session"
CSRF_COOKIE: Final = "aex_dash_csrf"
SESSION_TTL_S: Final = 15 * 60
SESSION_SCOPES: Final = (AccessScope.READ,)
_TOKEN_BYTES: Final = 32


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(session_token: str) -> str:
    """The sign-out form's token: derived from the session token, which only the browser has."""
    return hashlib.sha256(b"aex-dashboard-csrf:" + session_token.encode()).hexdigest()


def same_token(presented: str | None, expected: str | None) -> bool:
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def new_token() -> str:
    return secrets.token_urlsafe(_TOKEN_BYTES)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: a read-only principal and the session's expiry."""

    principal: Principal
    expires_at_ms: int

    @property
    def kind(self) -> PrincipalKind:
        return self.principal.kind


class Sessions:
    def __init__(self, db: MarketDb, store: KeyStore, *, ttl_s: int = SESSION_TTL_S) -> None:
        self._db = db
        self._store = store
        self._ttl_ms = ttl_s * 1000

    def open(self, principal: Principal) -> tuple[str, Viewer]:
        """A new session for a signed-in key: the cookie token (shown once) and its viewer."""
        token = new_token()
        now = now_ms()
        expires = now + self._ttl_ms
        row = (
            token_digest(token),
            principal.kind.value,
            principal.tenant_id,
            principal.provider_id,
            principal.key_id,
            principal.plan.value,
            self._store.credentials_epoch(),
            now,
            expires,
        )

        def write(session: Any) -> None:
            session.connection.execute(
                "DELETE FROM dashboard_sessions WHERE expires_at_ms <= ?", (now,)
            )
            session.connection.execute(
                "INSERT INTO dashboard_sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row
            )

        self._db.run(write)
        return token, Viewer(read_only(principal), expires)

    def viewer(self, token: str | None) -> Viewer | None:
        """The session's viewer, or None: unknown, expired, or the credentials epoch moved."""
        if not token or len(token) > 128:
            return None
        rows = self._db.read(
            "SELECT kind, tenant_id, provider_id, key_id, plan, credentials_epoch, expires_at_ms"
            " FROM dashboard_sessions WHERE session_digest = ?",
            (token_digest(token),),
        )
        if not rows:
            return None
        kind, tenant_id, provider_id, key_id, plan, epoch, expires = rows[0]
        if expires <= now_ms() or epoch != self._store.credentials_epoch():
            return None
        principal = Principal(
            PrincipalKind(kind),
            tenant_id,
            Plan(plan),
            key_id=key_id,
            provider_id=provider_id,
            scopes=SESSION_SCOPES,
            credential_id="dashboard-session",
        )
        return Viewer(principal, int(expires))

    def close(self, token: str | None) -> None:
        if not token:
            return
        digest = token_digest(token)

        def write(session: Any) -> None:
            session.connection.execute(
                "DELETE FROM dashboard_sessions WHERE session_digest = ?", (digest,)
            )

        self._db.run(write)


def read_only(principal: Principal) -> Principal:
    return Principal(
        principal.kind,
        principal.tenant_id,
        principal.plan,
        key_id=principal.key_id,
        provider_id=principal.provider_id,
        scopes=SESSION_SCOPES,
        credential_id="dashboard-session",
    )
