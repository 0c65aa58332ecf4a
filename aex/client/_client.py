"""`Client` and `AsyncClient`: the `Api` routes over httpx.

Writes carry an `Idempotency-Key` (one per call, the same on every retry of that call), so a
write is retried safely after a dropped connection or a 429/502/503/504: the exchange answers a
replay with the first answer. Reads are retried the same way. Retries are bounded
(`max_retries`), back off exponentially and honour `Retry-After` (capped). A refusal raises
`ProblemError` with the RFC 9457 fields the exchange sent.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx

from aex.client._ops import Api, Json, Op
from aex.client._sse import Notification, SseParser

RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_AFTER_S_MAX = 5.0
BACKOFF_S_BASE = 0.2
# A notification stream reconnects this often (with Last-Event-ID) before giving up.
STREAM_RECONNECTS_MAX = 10
# `pages` follows a cursor at most this often: 10,000 pages of 100 is a million records.
PAGES_MAX = 10_000


class ProblemError(Exception):
    """A refusal from the exchange: its RFC 9457 problem+json, fields as sent."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.type = str(problem.get("type", ""))
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", ""))
        self.errors: list[dict[str, Any]] = list(problem.get("errors", []))
        fields = ", ".join(str(error.get("field")) for error in self.errors)
        super().__init__(f"{status} {self.type or self.title}: {self.detail} [{fields}]")

    @property
    def slug(self) -> str:
        return self.type.rsplit("/", 1)[-1]


def _headers(api_key: str | None, token: str | None) -> dict[str, str]:
    headers = {"accept": "application/json", "user-agent": "aex-client"}
    if api_key is not None:
        headers["x-api-key"] = api_key
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return headers


def _request_headers(op: Op, idempotency_key: str | None) -> dict[str, str]:
    if op.write and idempotency_key is not None:
        return {"idempotency-key": idempotency_key}
    return {}


def _params(op: Op) -> dict[str, str]:
    return {name: str(value) for name, value in op.query.items()}


def _retry_in_s(attempt: int, max_retries: int, response: httpx.Response | None) -> float | None:
    """After an attempt (its response, or None for a transport error): the wait before the
    next attempt, or None when this attempt's outcome stands (an answer not worth retrying,
    or the attempts are spent)."""
    if attempt >= max_retries:
        return None
    if response is not None and response.status_code not in RETRY_STATUSES:
        return None
    return _delay_s(response, attempt)


def _stream_headers(last_event_id: str | None) -> dict[str, str]:
    headers = {"accept": "text/event-stream"}
    if last_event_id is not None:
        headers["last-event-id"] = last_event_id
    return headers


def _delay_s(response: httpx.Response | None, attempt: int) -> float:
    if response is not None:
        retry_after = response.headers.get("retry-after", "")
        if retry_after.isdigit():
            return min(float(retry_after), RETRY_AFTER_S_MAX)
    return float(min(BACKOFF_S_BASE * 2**attempt, RETRY_AFTER_S_MAX))


def _decode(response: httpx.Response) -> Json:
    if response.status_code >= 400:
        try:
            problem = response.json()
        except ValueError:
            problem = {"title": response.reason_phrase, "detail": response.text[:200]}
        raise ProblemError(response.status_code, problem if isinstance(problem, dict) else {})
    if response.status_code == 204 or not response.content:
        return None
    if "json" not in response.headers.get("content-type", "application/json"):
        return response.text  # a PEM, a VC-JWT (a status list): the text as served
    return response.json()


class Client(Api[Json]):
    """The exchange over HTTP, synchronously.

    Args:
        base_url: e.g. "http://127.0.0.1:8080".
        api_key: a tenant or provider key (`aexk_...`, `aex_pk_live_...`) or the operator key.
        token: a session JWT instead of a key.
        max_retries: attempts after the first, for transport errors and 429/502/503/504.
        transport: an httpx transport (tests, proxies).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        assert max_retries >= 0
        self.max_retries = max_retries
        self._http = httpx.Client(
            base_url=base_url,
            headers=_headers(api_key, token),
            timeout=timeout_s,
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, op: Op) -> Json:
        key = str(uuid.uuid4()) if op.write else None  # the same key on every retry
        for attempt in range(self.max_retries + 1):
            response: httpx.Response | None = None
            try:
                response = self._http.request(
                    op.method, op.path, json=op.body, params=_params(op),
                    headers=_request_headers(op, key),
                )  # fmt: skip
            except httpx.TransportError:
                if attempt >= self.max_retries:
                    raise
            wait_s = _retry_in_s(attempt, self.max_retries, response)
            if wait_s is None and response is not None:
                return _decode(response)
            time.sleep(wait_s or 0.0)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def each(self, page: Callable[..., Json], /, *args: object, **query: object) -> Iterator[Json]:
        """Every row of a list, page after page: `page` is one of the list methods
        (`contracts`, `own_bids`, `list_work`, `open_work`, `bids`, `transactions`,
        `webhook_deliveries`, `invoices`), called with `query` and each `next_cursor` as
        `starting_after` while `has_more`; e.g. `for c in aex.each(aex.contracts,
        status="SETTLED")`, `aex.each(aex.bids, work_id)`."""
        cursor: object = query.pop("starting_after", None)
        for _ in range(PAGES_MAX):
            found = page(*args, **query, starting_after=cursor)
            yield from found["data"]
            if not found["has_more"]:
                return
            assert found["next_cursor"] not in (None, cursor), "a page moves the cursor"
            cursor = found["next_cursor"]
        raise AssertionError(f"more than {PAGES_MAX} pages")

    def notifications(self, *, last_event_id: str | None = None) -> Iterator[Notification]:
        """The provider's notification stream (its provider key): work to bid on, awards,
        losses, contract changes. Reconnects after a dropped connection with Last-Event-ID,
        so no event is missed or repeated; ends after STREAM_RECONNECTS_MAX failed tries."""
        failures = 0
        while failures <= STREAM_RECONNECTS_MAX:
            headers = _stream_headers(last_event_id)
            parser = SseParser()
            try:
                with self._http.stream(
                    "GET", "/v1/notifications/stream", headers=headers, timeout=None
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        _decode(response)
                    for line in response.iter_lines():
                        for notification in parser.feed_line(line):
                            failures = 0
                            if notification.id is not None:
                                last_event_id = notification.id
                            yield notification
            except httpx.TransportError:
                pass
            failures += 1
            time.sleep(_delay_s(None, min(failures, 4)))


class AsyncClient(Api[Awaitable[Json]]):
    """The exchange over HTTP with asyncio; the same methods as `Client`, awaited."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        assert max_retries >= 0
        self.max_retries = max_retries
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=_headers(api_key, token),
            timeout=timeout_s,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _call(self, op: Op) -> Awaitable[Json]:
        return self._send(op)

    async def _send(self, op: Op) -> Json:
        key = str(uuid.uuid4()) if op.write else None  # the same key on every retry
        for attempt in range(self.max_retries + 1):
            response: httpx.Response | None = None
            try:
                response = await self._http.request(
                    op.method, op.path, json=op.body, params=_params(op),
                    headers=_request_headers(op, key),
                )  # fmt: skip
            except httpx.TransportError:
                if attempt >= self.max_retries:
                    raise
            wait_s = _retry_in_s(attempt, self.max_retries, response)
            if wait_s is None and response is not None:
                return _decode(response)
            await asyncio.sleep(wait_s or 0.0)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def each(
        self, page: Callable[..., Awaitable[Json]], /, *args: object, **query: object
    ) -> AsyncIterator[Json]:
        """As `Client.each`, asynchronously: `async for c in aex.each(aex.contracts)`."""
        cursor: object = query.pop("starting_after", None)
        for _ in range(PAGES_MAX):
            found = await page(*args, **query, starting_after=cursor)
            for row in found["data"]:
                yield row
            if not found["has_more"]:
                return
            assert found["next_cursor"] not in (None, cursor), "a page moves the cursor"
            cursor = found["next_cursor"]
        raise AssertionError(f"more than {PAGES_MAX} pages")

    async def notifications(
        self, *, last_event_id: str | None = None
    ) -> AsyncIterator[Notification]:
        """As `Client.notifications`, asynchronously."""
        failures = 0
        while failures <= STREAM_RECONNECTS_MAX:
            headers = _stream_headers(last_event_id)
            parser = SseParser()
            try:
                async with self._http.stream(
                    "GET", "/v1/notifications/stream", headers=headers, timeout=None
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        _decode(response)
                    async for line in response.aiter_lines():
                        for notification in parser.feed_line(line):
                            failures = 0
                            if notification.id is not None:
                                last_event_id = notification.id
                            yield notification
            except httpx.TransportError:
                pass
            failures += 1
            await asyncio.sleep(_delay_s(None, min(failures, 4)))
