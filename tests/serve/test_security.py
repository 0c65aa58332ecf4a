"""The Authenticator in-process, on a real SQLite store: each credential is its own principal
(`credential_id`), so a layer keyed by it (idempotency) never confuses a token with its key."""

from __future__ import annotations

import time
from pathlib import Path

from aex.core import TENANT_KEY_SCOPES, AccessScope
from serve.gateway.schemas import TenantCreate, TenantType, TokenCreate
from serve.identity.security import Authenticator, mint_token
from serve.services import Identity
from serve.stores.memory import TtlKeyCache
from serve.stores.sqlite import SqliteStore

SECRET = "s" * 40


def test_a_token_and_its_key_are_different_credentials(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "aex.sqlite3")
    created = Identity(store).sign_up(TenantCreate("Acme", TenantType.CONSUMER))
    auth = Authenticator(store, TtlKeyCache(300), operator_key="o" * 40, jwt_secret=SECRET)
    key = auth.authenticate(created.api_key, None)
    assert key is not None
    assert (key.credential_id, key.key_id, key.scopes) == (
        f"key:{created.key_id}",
        created.key_id,
        TENANT_KEY_SCOPES,
    )
    tokens = [
        mint_token(key, TokenCreate(scopes=["read"]), SECRET, now_s=int(time.time()) - n)
        for n in range(2)
    ]
    principals = [auth.authenticate(None, f"Bearer {t.token}") for t in tokens]
    assert all(p is not None and p.scopes == (AccessScope.READ,) for p in principals)
    ids = {p.credential_id for p in principals if p is not None}
    assert len(ids) == 2  # two tokens, two credentials
    assert key.credential_id not in ids
    assert {p.key_id for p in principals if p is not None} == {created.key_id}  # one parent
    assert auth.authenticate("o" * 40, None) == auth.authenticate(None, "Bearer " + "o" * 40)
