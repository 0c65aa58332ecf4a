"""RFC 9457 problem+json: the one place where refusals and errors become HTTP responses.

Every 4xx and 5xx the exchange sends is built here, whether it starts as a core `Rejected`
(its reason names the `type`, its hint the `status`, its field the offending field), a
`ProblemError` raised by the gateway or a route, a Litestar exception (validation, 404, 405,
oversized body) or an unexpected exception (500, no stack trace to the client). `type` is a
stable URI per kind of problem: clients switch on it, never on `title` or `detail`.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec

from aex.core import Rejected
from serve.breakers import DependencyUnavailable

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://aex.dev/problems/"
REQUEST_ID_SCOPE_KEY = "aex.request_id"

_log = logging.getLogger("aex.serve")

# Stable slugs for problems that do not come from a core reason.
_STATUS_SLUGS: Mapping[int, str] = {
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "unprocessable",
    429: "rate-limited",
    500: "internal-error",
    504: "timeout",
}


class FieldError(msgspec.Struct, frozen=True):
    field: str
    reason: str


class ProblemDetails(msgspec.Struct, frozen=True, omit_defaults=True):
    """The RFC 9457 body; `errors` lists offending fields, `request_id` ties it to the logs."""

    type: str
    title: str
    status: int
    detail: str = ""
    instance: str = ""
    request_id: str = ""
    errors: tuple[FieldError, ...] = ()


class ProblemError(Exception):
    """A refusal raised by a driver; rendered by `problem_response`."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str = "",
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {slug}: {detail}")
        assert 400 <= status <= 599
        self.status = status
        self.slug = slug
        self.detail = detail
        self.errors = tuple(errors)
        self.headers = dict(headers or {})


def problem_for_rejected(rejected: Rejected[Any]) -> ProblemError:
    """A core rejection: type from the reason, status from its hint, the field it names."""
    reason = rejected.reason
    return ProblemError(
        rejected.http_status,
        reason.value.replace("_", "-"),
        rejected.detail or rejected.field,
        errors=(FieldError(rejected.field, reason.value),),
    )


T = TypeVar("T")


def listed(page: T | None, unknown: str) -> T:
    """A list's page, or the one 422 for a cursor that names none of the rows listed
    (serve/stores/pages.py `keyset_page` answers None): alike for another's id and an id that
    does not exist, so a cursor reveals nothing; `unknown` is its reason (`unknown_work`)."""
    if page is None:
        raise ProblemError(
            422,
            "invalid-request",
            "starting_after names none of the rows listed",
            errors=(FieldError("starting_after", unknown),),
        )
    return page


def problem_for_outage(error: BaseException) -> ProblemError | None:
    """A dependency or resource outage (not a bug): PostgreSQL unreachable or behind its open
    breaker (503, `Retry-After` until the probe), the SQLite disk full (507). None otherwise."""
    if isinstance(error, DependencyUnavailable):
        return ProblemError(
            503,
            "dependency-unavailable",
            f"{error.dependency} is unavailable; nothing was written, retry later",
            headers={"Retry-After": str(error.retry_after_s)},
        )
    if isinstance(error, sqlite3.OperationalError) and _is_disk_full(error):
        _log.error("sqlite: the disk is full, writes refused: %s", error)
        return ProblemError(507, "insufficient-storage", "the exchange's disk is full")
    if isinstance(error, sqlite3.OperationalError) and _is_busy(error):
        # Another connection (a second process, a backup, the CLI) held the write lock past
        # the busy timeout: the write was never begun or was rolled back.
        _log.warning("sqlite: the write lock was held past the busy timeout: %s", error)
        return ProblemError(
            503,
            "dependency-unavailable",
            "the database is busy; nothing was written, retry later",
            headers={"Retry-After": "1"},
        )
    return None


def _is_busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) in {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    } or ("database is locked" in str(error))


def _is_disk_full(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or (
        "disk is full" in str(error)
    )


def problem_for_exception(error: BaseException) -> ProblemError:
    if isinstance(error, ProblemError):
        return error
    outage = problem_for_outage(error)
    if outage is not None:
        return outage
    if isinstance(error, ValidationException):
        return ProblemError(
            422, "invalid-request", str(error.detail), errors=_validation_errors(error)
        )
    if isinstance(error, HTTPException) and error.status_code == 400:
        # One validation status: whatever Litestar could not parse is a 422 like ours.
        return ProblemError(422, "invalid-request", str(error.detail))
    if isinstance(error, HTTPException):
        # Litestar's headers travel with the problem: `Allow` on a 405 (RFC 9110 15.5.6).
        slug = _STATUS_SLUGS.get(error.status_code, "http-error")
        headers = {str(name): str(value) for name, value in (error.headers or {}).items()}
        return ProblemError(error.status_code, slug, str(error.detail), headers=headers)
    _log.exception("unhandled exception", exc_info=error)
    return ProblemError(500, "internal-error", "the request failed; nothing was written")


def render_problem(problem: ProblemError, *, request_id: str, instance: str) -> bytes:
    title = problem.slug.replace("-", " ").capitalize()
    details = ProblemDetails(
        type=PROBLEM_TYPE_BASE + problem.slug,
        title=title,
        status=problem.status,
        detail=problem.detail,
        instance=instance,
        request_id=request_id,
        errors=problem.errors,
    )
    return msgspec.json.encode(details)


def problem_response(request: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    """The Litestar exception handler for every exception type (registered once in app.py)."""
    problem = problem_for_exception(error)
    request_id = str(request.scope.get(REQUEST_ID_SCOPE_KEY, ""))
    body = render_problem(problem, request_id=request_id, instance=request.url.path)
    return Response(
        body,
        status_code=problem.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=problem.headers,
    )


def problem_asgi_messages(
    problem: ProblemError, *, request_id: str, instance: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same body as raw ASGI messages, for the gateway middleware outside Litestar."""
    body = render_problem(problem, request_id=request_id, instance=instance)
    headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *((name.lower().encode(), value.encode()) for name, value in problem.headers.items()),
    ]
    start = {"type": "http.response.start", "status": problem.status, "headers": headers}
    return start, {"type": "http.response.body", "body": body}


def _validation_errors(error: ValidationException) -> tuple[FieldError, ...]:
    found: list[FieldError] = []
    extra = error.extra if isinstance(error.extra, list) else []
    for item in extra:
        if isinstance(item, dict):
            message = str(item.get("message", "invalid"))
            field = _field_in(message) or str(item.get("key") or item.get("source") or "body")
            found.append(FieldError(field, message))
    return tuple(found) or (FieldError("body", str(error.detail)),)


# msgspec names the offending path in its messages: "... - at `$.amount`", "unknown field `x`",
# "missing required field `name`". The path becomes the problem's field ("amount", "items[0]").
_MSGSPEC_FIELD = re.compile(r"(?:at `\$\.?([^`]*)`|field `([^`]*)`)")


def _field_in(message: str) -> str | None:
    found = _MSGSPEC_FIELD.findall(message)
    if not found:
        return None
    at_path, named = found[-1]
    if at_path and named:
        return f"{at_path}.{named}"
    return at_path or named or None


def _problem_spec(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=ProblemDetails, description=description, media_type=PROBLEM_CONTENT_TYPE
    )


# Documented on every route (OpenAPI): the gateway can answer any of these anywhere.
PROBLEM_RESPONSES: dict[int, ResponseSpec] = {
    400: _problem_spec("The Idempotency-Key header is not 1 to 255 visible characters"),
    401: _problem_spec("Missing, malformed, invalid, revoked or expired credential"),
    403: _problem_spec("Wrong kind of credential, suspended tenant, or a quota (max agents)"),
    404: _problem_spec("No such resource, or not the caller's"),
    409: _problem_spec("Idempotency-Key still in flight, or a ledger conflict"),
    413: _problem_spec("Body over the plan's max payload size"),
    422: _problem_spec(
        "Malformed JSON, an unknown field, a wrong type or a bad parameter (errors[].field),"
        " or a business rule refused it (money precision, funds, key reuse)"
    ),
    429: _problem_spec("Rate limit or daily quota exceeded (Retry-After)"),
    500: _problem_spec("Internal error; nothing was written"),
    503: _problem_spec("A dependency (PostgreSQL) is unavailable; retry after Retry-After"),
    504: _problem_spec("No answer within the 30 s timeout"),
}
