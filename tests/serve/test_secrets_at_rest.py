"""Issue 11, item 2: no secret the exchange handed out can be read back from what it keeps.

A real server on each backend hands out every kind of secret (sign-up, minted and rotated API
keys, a JWT, a provider's key, api secret and webhook secrets), each also through an
Idempotency-Key and its replay, delivers a signed webhook, and is refused a revoked key. Then
the whole data directory (database, -wal, -shm, key files), the server's log, and on
PostgreSQL every row of its schema and every Redis value under its prefix are searched for each
secret: none is found, except the operator key and the JWT secret in their own key files. The
database files are 0600, and nothing stored in a provider's row signs its webhooks.
"""

from __future__ import annotations

import hashlib
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aex.core import verify_webhook_signature as verify_webhook
from tests.serve.market_helpers import consumer, submit_work
from tests.serve.server import TEST_DATABASE_URL, TEST_REDIS_URL, Backend, Server
from tests.serve.webhook_receiver import Receiver

# The operator key and the JWT secret come from their key files, not from the environment.
SERVER_ENV = {"AEX_OPERATOR_KEY": "", "AEX_JWT_SECRET": "", "AEX_WEBHOOK_ALLOW_PRIVATE": "1"}
KEY_FILES = ("operator.key", "jwt.secret", "webhook.key")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.stop()


def _idempotent(client: httpx.Client, path: str, headers: dict[str, str], body: Any) -> Any:
    """POSTs with an Idempotency-Key, then replays it (the replay withholds the secret)."""
    key = {**headers, "Idempotency-Key": f"at-rest-{uuid.uuid4()}"}
    first = client.post(path, json=body, headers=key)
    assert first.status_code in (200, 201), (path, first.text)
    assert client.post(path, json=body, headers=key).status_code == 409
    return first.json()


def _hand_out_every_secret(
    client: httpx.Client, receiver: Receiver, operator: dict[str, str]
) -> dict[str, str]:
    signed = _idempotent(client, "/v1/tenants", {}, {"name": "Keeper", "type": "BOTH"})
    tenant = {"X-API-Key": signed["api_key"]}
    minted = _idempotent(client, "/v1/keys", tenant, {})
    rotated = _idempotent(client, f"/v1/keys/{minted['key_id']}/rotate", tenant, {})
    token = _idempotent(client, "/v1/tokens", tenant, {"ttl_s": 600})["token"]
    agent = {
        "name": "KeeperBot",
        "type": "AI_AGENT",
        "capabilities": ["code_review"],
        "category": "TECHNOLOGY",
        "endpoint": receiver.url,
    }
    provider = _idempotent(client, "/v1/providers", tenant, agent)
    renewed = _idempotent(
        client, f"/v1/providers/{provider['provider_id']}/webhook-secret", tenant, {}
    )
    provider_key = {"X-API-Key": provider["api_key"]}
    subscription = {"provider_id": provider["provider_id"], "categories": ["TECHNOLOGY"]}
    assert client.post("/v1/subscriptions", json=subscription, headers=provider_key).status_code
    # A revoked key presented (logged as a refusal) and a JWT used: neither may be written.
    assert client.get("/v1/keys", headers={"X-API-Key": minted["api_key"]}).status_code == 401
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/tenants/me", headers=bearer).status_code == 200
    submit_work(client, consumer(client), bid_window_seconds=300)
    # The token bank: a voucher's code is shown once, stored as a digest, redeemed by code.
    voucher = _idempotent(
        client,
        "/v1/admin/vouchers",
        operator,
        {"amount": "5.00", "currency": "USD", "expires_at_ms": 32472144000000},
    )
    redeemed = client.post("/v1/vouchers/redeem", json={"code": voucher["code"]}, headers=tenant)
    assert redeemed.status_code == 201, redeemed.text
    deadline = time.monotonic() + 15
    while not receiver.received:
        assert time.monotonic() < deadline, "no webhook delivered"
        time.sleep(0.1)
    return {
        "provider_id": provider["provider_id"],
        "sign-up api key": signed["api_key"],
        "minted api key": minted["api_key"],
        "rotated api key": rotated["api_key"],
        "jwt": token,
        "provider api key": provider["api_key"],
        "provider api secret": provider["api_secret"],
        "first webhook secret": provider["webhook_secret"],
        "webhook secret": renewed["webhook_secret"],
        "voucher code": voucher["code"],
    }


def _needles(secrets: dict[str, str]) -> dict[str, bytes]:
    """Each secret, and the part of it that is the secret (its 64 random hex characters, a
    JWT's signature), so a secret stored without its prefix is found too."""
    found: dict[str, bytes] = {}
    for name, secret in secrets.items():
        if name == "provider_id":
            continue
        found[name] = secret.encode()
        tail = secret.rsplit(".", 1)[-1] if name == "jwt" else secret[-64:]
        found[f"{name} (tail)"] = tail.encode()
    return found


def _files(server: Server) -> dict[str, bytes]:
    files = {str(p): p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file()}
    files[str(server.log_path)] = server.log_path.read_bytes()
    return files


def _postgres_rows(backend: Backend) -> dict[str, bytes]:
    import psycopg
    import redis

    rows: dict[str, bytes] = {}
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (backend.schema,),
        ).fetchall()
        for (table,) in tables:
            query = f'SELECT * FROM "{backend.schema}"."{table}"'.encode()
            values = [
                v if isinstance(v, bytes) else str(v).encode()
                for row in connection.execute(query).fetchall()
                for v in row
            ]
            rows[f"postgres:{table}"] = b"\n".join(values)
    client = redis.Redis.from_url(TEST_REDIS_URL)
    for key in client.scan_iter(match=backend.redis_prefix + "*", count=1000):
        rows[f"redis:{key!r}"] = repr(_redis_value(client, key)).encode()
    client.close()
    return rows


def _redis_value(client: Any, key: bytes) -> Any:
    kind = client.type(key)
    if kind == b"string":
        return client.get(key)
    if kind == b"hash":
        return client.hgetall(key)
    if kind == b"zset":
        return client.zrange(key, 0, -1)
    if kind == b"list":
        return client.lrange(key, 0, -1)
    if kind == b"set":
        return client.smembers(key)
    return kind


def _assert_nowhere(places: dict[str, bytes], needles: dict[str, bytes]) -> None:
    leaks = [
        (name, place) for place, data in places.items() for name, n in needles.items() if n in data
    ]
    assert leaks == [], leaks


def _assert_only_in_its_file(places: dict[str, bytes], server: Server) -> None:
    for name in ("operator.key", "jwt.secret"):
        secret = (server.data_dir / name).read_bytes().strip()
        assert len(secret) >= 32
        elsewhere = [p for p, data in places.items() if secret in data and Path(p).name != name]
        assert elsewhere == [], (name, elsewhere)


def _assert_owner_only(server: Server, backend: Backend) -> None:
    assert stat.S_IMODE(server.data_dir.stat().st_mode) == 0o700
    checked = [server.data_dir / name for name in KEY_FILES]
    if backend.name == "sqlite":
        database = sorted(server.data_dir.glob("aex.sqlite3*"))
        assert {p.name for p in database} >= {"aex.sqlite3", "aex.sqlite3-wal", "aex.sqlite3-shm"}
        checked += database
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in checked}
    assert set(modes.values()) == {"0o600"}, modes


def _assert_stored_values_do_not_sign(
    backend: Backend, server: Server, provider_id: str, delivered: tuple[dict[str, str], bytes]
) -> None:
    headers, body = delivered
    with backend.market_db(server.data_dir) as db:
        rows = db.read("SELECT * FROM providers WHERE provider_id = ?", (provider_id,))
    assert len(rows) == 1
    for value in rows[0]:
        for key in (str(value), hashlib.sha256(str(value).encode()).hexdigest()):
            assert not verify_webhook(key, headers, body, now_s=int(time.time())), value


def test_no_secret_is_recoverable_from_the_data_directory_database_or_logs(
    tmp_path: Path, own_backend: Backend, receiver: Receiver
) -> None:
    server = Server(tmp_path / "data", env={**own_backend.env, **SERVER_ENV}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            operator = (server.data_dir / "operator.key").read_text().strip()
            secrets = _hand_out_every_secret(client, receiver, {"X-API-Key": operator})
            listed = client.get("/v1/admin/tenants", headers={"X-API-Key": operator})
            assert listed.status_code == 200
        delivered = receiver.received[-1]
        now_s = int(time.time())
        assert verify_webhook(secrets["webhook secret"], *delivered, now_s=now_s)
        assert not verify_webhook(secrets["first webhook secret"], *delivered, now_s=now_s)
        _assert_stored_values_do_not_sign(own_backend, server, secrets["provider_id"], delivered)
        # While it runs: the WAL and shared-memory files hold the latest writes.
        _assert_owner_only(server, own_backend)
        places = _files(server)
        if own_backend.name == "postgres":
            places |= _postgres_rows(own_backend)
        # The search reads what was stored: the provider's id is found in its database rows.
        where = "postgres:providers" if own_backend.name == "postgres" else "aex.sqlite3"
        assert any(
            secrets["provider_id"].encode() in data for p, data in places.items() if where in p
        )
        _assert_nowhere(places, _needles(secrets))
        _assert_only_in_its_file(places, server)
    finally:
        server.stop()
    # After a clean stop (the WAL checkpointed into the database file): still nowhere.
    _assert_nowhere(_files(server), _needles(secrets))
