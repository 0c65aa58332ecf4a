"""The rules of the spec's last layers: rate limit and auth (`Admission`); then idempotency.

Spec "Production Middleware Stack": "5. Timeout → 30s max request duration 6. RateLimit →
Redis-backed, per-tenant enforcement 7. Auth → API key or JWT validation". Rate limiting runs
before the auth decision, yet per tenant: it resolves the credential through the same cached
`Authenticator` (no store write) and limits by tenant when the credential is good, by client
address otherwise (so key guessing is rate limited too); then the decision on the credential:
401/403 problem+json, or the principal for the handlers. The timeout is the gateway's
(serve/gateway/pipeline.py), which runs these in one ASGI layer. The
client address is the TCP peer's unless `aex serve` was told of a trusted proxy
(AEX_TRUSTED_PROXIES); `/health` and `/ready` are never limited. Which scope a route needs is
checked after routing (serve/gateway/callers.py `require_scope`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import anyio

from aex.core import (
    PLAN_QUOTAS,
    CredentialKind,
    Plan,
    check_daily_requests_quota,
    check_payload_quota,
)
from serve.gateway.asgi import (
    IDEMPOTENCY_KEY_SCOPE_KEY,
    PRINCIPAL_SCOPE_KEY,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    client_address,
    header,
    send_problem,
)
from serve.gateway.problems import ProblemError, problem_for_rejected
from serve.identity.security import Authenticator, Principal, PrincipalKind, now_ms
from serve.stores.base import IdempotencyStore, RateLimitStore, StoredResponse

# Routes that take no credential: sign-up, health and readiness, the OpenAPI document.
PUBLIC_ROUTES = frozenset({("POST", "/v1/tenants"), ("GET", "/health"), ("GET", "/ready")})
# The dashboard takes no API key at the edge: it signs in into its own read-only cookie
# session (serve/dashboard/sessions.py), checked by its router before the scope guard.
PUBLIC_PREFIXES = ("/schema", "/dashboard")
# Market (issue 5): the certificate authority's public documents (a third party checks a
# certificate, the CRL and the CA key without an AEX account).
PUBLIC_MARKET_ROUTES = frozenset(
    {
        ("GET", "/v1/crl"),
        ("GET", "/.well-known/aex-ca.json"),
        ("GET", "/.well-known/agent-card.json"),
    }
)
# The W3C Bitstring Status Lists (issue 15): a verifier fetches them without an account.
PUBLIC_GET_PREFIXES = ("/v1/certificates/cert_", "/v1/status-lists/")
# Prometheus: the operator key by default; public only with AEX_METRICS_PUBLIC=1.
METRICS_ROUTE = ("GET", "/metrics")
# Probes (load balancers, orchestrators) are never rate limited: a tenant or an address at its
# limit must not make the exchange look dead. Both answer without a credential and cheaply.
UNLIMITED_ROUTES = frozenset({("GET", "/health"), ("GET", "/ready")})
_DAY_S = 86_400
# An idempotency claim whose request never finished (the process died) may be taken over.
IDEMPOTENCY_STALE_AFTER_MS = 60_000
# An Idempotency-Key record lives 24 h from its first request (docs/api.md): after that the
# same key starts a new request, and the record is pruned. Money stays safe past the TTL: the
# ledger's own operation id (derived from the key) still refuses to move money twice.
IDEMPOTENCY_TTL_MS = 24 * 3_600_000
# Pruning: at most once per interval per process, at most this many rows per pass.
IDEMPOTENCY_PRUNE_INTERVAL_MS = 600_000
IDEMPOTENCY_PRUNE_ROWS_MAX = 10_000
IDEMPOTENCY_KEY_CHARS_MAX = 255
# Whose Idempotency-Key record it is when no credential was presented (sign-up): the record is
# then bound only to the client-chosen key, and its answer (an API key) is always withheld.
ANONYMOUS_OWNER = "anonymous"
# How a withheld answer is stored: {"status": ..., "sha256": ...} under this content type.
WITHHELD_CONTENT_TYPE = "application/vnd.aex.withheld+json"
# Anything shaped like a secret shown once: an AEX credential or a JWT (header.payload.).
_SHOWN_ONCE_SHAPES = re.compile(
    rb"(?:"
    + b"|".join(re.escape(kind.value.encode()) for kind in CredentialKind)
    + rb")[0-9a-f]{64}|eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\."
)


def is_public(scope: Scope, *, metrics_public: bool = False) -> bool:
    path: str = scope["path"]
    method: str = scope["method"]
    if (method, path) in PUBLIC_ROUTES or (method, path) in PUBLIC_MARKET_ROUTES:
        return True
    if metrics_public and (method, path) == METRICS_ROUTE:
        return True
    if method == "GET" and path.startswith(PUBLIC_GET_PREFIXES):
        # A certificate is public; its record (state, review note) is its owner's (issue 11).
        return not path.endswith("/record")
    return path.startswith(PUBLIC_PREFIXES)


# Long-lived by design (server-sent events): not cut by the request timeout.
STREAMING_PATHS = frozenset({"/v1/notifications/stream", "/dashboard/stream"})


class Admission:
    """Spec 6 and 7: the rate limit, then the credential's decision (401/403, the payload
    quota, X-Tenant-ID stripped and re-set). The gateway (serve/gateway/pipeline.py) asks it
    once per request, after the unknown-path refusal."""

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        limiter: RateLimitStore,
        per_minute_override: int | None,
        per_day_override: int | None = None,
        burst: int,
        anonymous_per_minute: int,
        metrics_public: bool = False,
        clock_s: Callable[[], float] = time.time,
    ) -> None:
        self.metrics_public = metrics_public
        self.authenticator = authenticator
        self.limiter = limiter
        self.per_minute_override = per_minute_override
        self.per_day_override = per_day_override
        self.burst = burst
        self.anonymous_per_minute = anonymous_per_minute
        self.clock_s = clock_s

    def admit(self, scope: Scope, answer_headers: list[tuple[bytes, bytes]]) -> ProblemError | Plan:
        """A refusal, or the plan whose payload quota the request's body is held to (the
        request goes on: the scope carries its principal). The rate-limit headers that every
        answer to the request carries are appended to `answer_headers`."""
        if (scope["method"], scope["path"]) in UNLIMITED_ROUTES:
            return self._authorize(scope, None)
        outcome = self._authenticate(scope)
        principal = outcome if isinstance(outcome, Principal) else None
        bucket, per_minute = self._bucket(scope, principal)
        now_s = self.clock_s()
        decision = self.limiter.acquire(
            bucket, per_minute=per_minute, burst=min(self.burst, per_minute), now_s=now_s
        )
        answer_headers += (
            (b"x-ratelimit-limit", str(decision.limit).encode()),
            (b"x-ratelimit-remaining", str(decision.remaining).encode()),
            (b"x-ratelimit-reset", str(decision.reset_epoch_s).encode()),
        )
        if not decision.allowed:
            retry = {"Retry-After": str(decision.retry_after_s)}
            return ProblemError(429, "rate-limited", f"{per_minute}/minute", headers=retry)
        if principal is not None and principal.kind is not PrincipalKind.OPERATOR:
            daily = self.limiter.count_today(bucket, day=int(now_s // _DAY_S))
            rejected = check_daily_requests_quota(
                principal.plan, daily, requests_per_day_override=self.per_day_override
            )
            if rejected is not None:
                problem = problem_for_rejected(rejected)
                problem.headers["Retry-After"] = str(_DAY_S - int(now_s) % _DAY_S)
                return problem
        return self._authorize(scope, outcome)

    def _authenticate(self, scope: Scope) -> Principal | ProblemError | None:
        # Rate limiting is per tenant, so the credential is resolved first (the cached
        # Authenticator: no store write); a bad one is acted on after the limit.
        if is_public(scope, metrics_public=self.metrics_public):
            return None
        try:
            return self.authenticator.authenticate(
                header(scope, b"x-api-key"), header(scope, b"authorization")
            )
        except ProblemError as problem:
            return problem

    def _bucket(self, scope: Scope, principal: Principal | None) -> tuple[str, int]:
        if principal is None:
            return "ip:" + client_address(scope), self.anonymous_per_minute
        plan_limit = PLAN_QUOTAS[principal.plan].requests_per_minute
        per_minute = self.per_minute_override or plan_limit
        if principal.kind is PrincipalKind.OPERATOR:
            return "operator", per_minute
        return f"tenant:{principal.tenant_id}", per_minute

    def _authorize(
        self, scope: Scope, outcome: Principal | ProblemError | None
    ) -> ProblemError | Plan:
        if isinstance(outcome, ProblemError):
            return outcome
        if outcome is None and not is_public(scope, metrics_public=self.metrics_public):
            return ProblemError(401, "credential-missing", "send X-API-Key or a Bearer JWT")
        # Spec: "External clients cannot set X-Tenant-ID directly (gateway strips it)".
        headers = [(k, v) for k, v in scope["headers"] if k != b"x-tenant-id"]
        principal: Principal | None = outcome
        if principal is not None and principal.tenant_id is not None:
            headers.append((b"x-tenant-id", principal.tenant_id.encode()))
        scope["headers"] = headers
        scope[PRINCIPAL_SCOPE_KEY] = principal
        plan = Plan.EXPLORER if principal is None else principal.plan
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit():
            rejected = check_payload_quota(plan, int(declared))
            if rejected is not None:
                return problem_for_rejected(rejected)
        return plan


def counting(receive: Receive, plan: Plan) -> Receive:
    """`receive`, held to the plan's payload quota: a body without Content-Length (chunked)
    is counted as it streams in."""
    seen = [0]

    async def counted() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            seen[0] += len(message.get("body", b""))
            rejected = check_payload_quota(plan, seen[0])
            if rejected is not None:
                raise problem_for_rejected(rejected)
        return message

    return counted


_log = logging.getLogger("aex.serve")


class IdempotencyMiddleware:
    """`Idempotency-Key` on any POST: the same key and body replay the stored response; the
    same key with another body answers 422; a retry while the first is running answers 409.
    Money routes also derive their ledger operation id from the key, so a retry after a crash
    between the ledger commit and the stored response still cannot move money twice.

    A record belongs to the exact credential that made it (`Principal.credential_id`: one API
    key, one JWT, the operator key), never to a tenant or a client address: another key of the
    same tenant, a provider key or a token with the same Idempotency-Key starts afresh. Without
    a credential (sign-up) the record is bound only to the client-chosen Idempotency-Key. An
    answer that carries a secret shown once (its route sends `Cache-Control: no-store`, or its
    body holds anything shaped like an AEX credential or a JWT) is never stored: only its
    status and the SHA-256 of its body are, and a replay answers 409
    `idempotency-replay-withheld` (the secret cannot be shown twice)."""

    def __init__(self, app: ASGIApp, *, store: IdempotencyStore) -> None:
        self.app = app
        self.store = store
        self._next_prune_ms = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if not 0 < len(key) <= IDEMPOTENCY_KEY_CHARS_MAX or not key.isprintable():
            await send_problem(scope, send, ProblemError(400, "idempotency-key-invalid"))
            return
        principal: Principal | None = scope.get(PRINCIPAL_SCOPE_KEY)
        owner = _owner(principal)
        try:
            body = await _read_body(receive)
        except ProblemError as problem:
            await send_problem(scope, send, problem)
            return
        digest = hashlib.sha256(
            b"\n".join([scope["method"].encode(), scope["path"].encode(), body])
        ).hexdigest()
        now = now_ms()
        if now >= self._next_prune_ms:
            self._next_prune_ms = now + IDEMPOTENCY_PRUNE_INTERVAL_MS
            await self._prune(now)
        claim = await anyio.to_thread.run_sync(
            lambda: self.store.claim(
                owner,
                key,
                digest,
                now_ms=now,
                stale_after_ms=IDEMPOTENCY_STALE_AFTER_MS,
                ttl_ms=IDEMPOTENCY_TTL_MS,
            )
        )
        if claim.outcome == "MISMATCH":
            detail = "this Idempotency-Key was used with another request body"
            await send_problem(scope, send, ProblemError(422, "idempotency-key-reused", detail))
            return
        if claim.outcome == "IN_FLIGHT":
            detail = "a request with this Idempotency-Key is still running"
            await send_problem(scope, send, ProblemError(409, "idempotency-key-in-flight", detail))
            return
        if claim.outcome == "REPLAY":
            assert claim.response is not None
            if claim.response.content_type == WITHHELD_CONTENT_TYPE:
                await send_problem(scope, _replayed(send), _withheld_problem(claim.response))
                return
            await _send_stored(send, claim.response)
            return
        scope[IDEMPOTENCY_KEY_SCOPE_KEY] = f"{owner}:{key}"
        await self._run_and_store(scope, body, send, owner, key)

    async def _prune(self, now: int) -> None:
        # Expired records only; a failure is logged and retried at the next interval.
        try:
            await anyio.to_thread.run_sync(
                lambda: self.store.prune_idempotency(
                    before_ms=now - IDEMPOTENCY_TTL_MS, limit=IDEMPOTENCY_PRUNE_ROWS_MAX
                )
            )
        except Exception as error:
            _log.warning("idempotency prune failed: %s", type(error).__name__)

    async def _run_and_store(
        self, scope: Scope, body: bytes, send: Send, owner: str, key: str
    ) -> None:
        captured: dict[str, Any] = {
            "status": 500,
            "type": "application/json",
            "cache": "",
            "body": [],
        }
        # The answer is held back until its record is stored: a client that retries the moment
        # it has the answer finds the record complete (a replay), never still in flight.
        held: list[Message] = []

        async def replay_receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                for name, value in message.get("headers", []):
                    if name == b"content-type":
                        captured["type"] = bytes(value).decode()
                    elif name == b"cache-control":
                        captured["cache"] = bytes(value).decode("latin-1")
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            held.append(message)

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            await anyio.to_thread.run_sync(lambda: self.store.release(owner, key))
            raise
        try:
            await self._store(owner, key, captured)
        except Exception as error:  # the answer stands; its record is given up, not left running
            _log.warning("idempotency record not stored: %s", type(error).__name__)
            with contextlib.suppress(Exception):
                await anyio.to_thread.run_sync(lambda: self.store.release(owner, key))
        for message in held:
            await send(message)

    async def _store(self, owner: str, key: str, captured: dict[str, Any]) -> None:
        status = captured["status"]
        if status >= 500 or status in {409, 429}:
            await anyio.to_thread.run_sync(lambda: self.store.release(owner, key))
            return
        body_sent = b"".join(captured["body"])
        response = StoredResponse(status, body_sent, captured["type"])
        if _withheld(status, body_sent, captured["cache"]):
            digest = {"status": status, "sha256": hashlib.sha256(body_sent).hexdigest()}
            response = StoredResponse(status, json.dumps(digest).encode(), WITHHELD_CONTENT_TYPE)
        await anyio.to_thread.run_sync(
            lambda: self.store.complete(owner, key, response, now_ms=now_ms())
        )


def _owner(principal: Principal | None) -> str:
    # The credential, not its tenant: a record made by one key is never answered to another.
    if principal is None:
        return ANONYMOUS_OWNER
    assert principal.credential_id is not None
    return principal.credential_id


def _withheld(status: int, body: bytes, cache_control: str) -> bool:
    """Does this answer carry a secret shown once (so its body must not be stored)?"""
    no_store = "no-store" in cache_control.lower()
    return (status < 400 and no_store) or _SHOWN_ONCE_SHAPES.search(body) is not None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replayed(send: Send) -> Send:
    """Marks a replayed answer: `Idempotent-Replayed: true`, and `"replayed": true` in a JSON
    object body (content-length adjusted)."""
    pending: list[Message] = []

    async def marked(message: Message) -> None:
        if message["type"] == "http.response.start":
            pending.append(message)
            return
        if message["type"] == "http.response.body" and pending:
            start = pending.pop()
            headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
            content_type = next((bytes(v).decode() for k, v in headers if k == b"content-type"), "")
            body = _marked_replayed(
                StoredResponse(start["status"], message.get("body", b""), content_type)
            )
            start["headers"] = [
                *headers,
                (b"content-length", str(len(body)).encode()),
                (b"idempotent-replayed", b"true"),
            ]
            await send(start)
            await send({**message, "body": body})
            return
        await send(message)

    return marked


def _withheld_problem(stored: StoredResponse) -> ProblemError:
    status = json.loads(stored.body)["status"]
    detail = (
        f"the first request with this Idempotency-Key was answered {status}; that answer"
        " carried a secret shown once, which the exchange does not keep"
    )
    return ProblemError(409, "idempotency-replay-withheld", detail)


def _marked_replayed(response: StoredResponse) -> bytes:
    """A replayed JSON object says so in its body too: `"replayed": true`."""
    if "json" not in response.content_type or not response.body.startswith(b"{"):
        return response.body
    try:
        body = json.loads(response.body)
    except ValueError:
        return response.body
    if not isinstance(body, dict):
        return response.body
    body["replayed"] = True
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


async def _send_stored(send: Send, response: StoredResponse) -> None:
    response = StoredResponse(response.status, _marked_replayed(response), response.content_type)
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [
                (b"content-type", response.content_type.encode()),
                (b"content-length", str(len(response.body)).encode()),
                (b"idempotent-replayed", b"true"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": response.body})
