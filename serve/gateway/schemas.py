"""Wire shapes, and the one JSON decoder every request body goes through.

Bodies are msgspec Structs decoded strictly: unknown fields refused, no type coercion (`"3600"`
is not an integer, `1.0` neither; Litestar's own decoding would coerce both, so the app's
`StrictRequest` decodes a typed handler's `data` here instead). Money amounts arrive as JSON
numbers or strings and are decoded as `Decimal` from the literal the client sent (never through
a float), then parsed exactly by `aex.core.parse_money`; they leave as decimal strings
("100.10"). Routes that take free-form JSON (work, bids, contracts, certificates) decode it
here too, every non-integer number as Decimal, nesting bounded by
`limits.request_json_depth_max` (deeper is 422 `body-too-deep` naming the top-level member).
Names people read (a Struct's `display_text_fields`) are refused with 422 when they hold a
control or bidirectional control character (aex/core/text.py).
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import msgspec
from litestar import Request

from aex.core import (
    SCOPES_PER_TOKEN_MAX,
    BodyRejectReason,
    Plan,
    Rejected,
    check_display_text,
    json_text_too_deep,
    limits,
)
from serve.gateway.problems import FieldError, ProblemError, problem_for_rejected

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")]
Pattern = Annotated[
    str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^(\*|[A-Za-z0-9_.\-]+\*?)$")
]
Endpoint = Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^https?://")]
Currency = Annotated[str, msgspec.Meta(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")]
Identifier = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z]+_[0-9a-f]+$")
]
# One time format (docs/api.md "Times"): every timestamp the API takes or gives is an integer
# count of milliseconds since the Unix epoch, UTC, in a field whose name ends in `_ms`.
TIME_MS_MAX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: the last instant RFC 3339 can name
TimeMs = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=TIME_MS_MAX,
        description="Milliseconds since the Unix epoch (UTC).",
        examples=[1767225600000],
    ),
]


class TenantType(StrEnum):
    CONSUMER = "CONSUMER"
    PROVIDER = "PROVIDER"
    BOTH = "BOTH"


class Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Request bodies: unknown fields refused; `display_text_fields` are names people read."""

    display_text_fields: ClassVar[tuple[str, ...]] = ()


class TenantCreate(Strict, frozen=True):
    display_text_fields = ("name",)
    name: Name
    type: TenantType


class TenantView(msgspec.Struct, frozen=True):
    tenant_id: str
    name: str
    type: str
    plan: Plan
    status: str
    created_at_ms: int


class TenantPage(msgspec.Struct, frozen=True):
    """GET /v1/admin/tenants: newest first; pass `next_cursor` as `starting_after` while
    `has_more`."""

    data: list[TenantView]
    has_more: bool
    next_cursor: str | None


class TenantCreated(msgspec.Struct, frozen=True):
    tenant_id: str
    name: str
    type: str
    plan: Plan
    status: str
    key_id: str
    api_key: str


class PlanChange(Strict, frozen=True):
    plan: Plan


class KeyView(msgspec.Struct, frozen=True):
    key_id: str
    kind: str
    prefix: str
    created_at_ms: int
    revoked_at_ms: int | None
    provider_id: str | None


class KeyPage(msgspec.Struct, frozen=True):
    """GET /v1/keys: newest first; pass `next_cursor` as `starting_after` while `has_more`."""

    data: list[KeyView]
    has_more: bool
    next_cursor: str | None


class KeyCreated(msgspec.Struct, frozen=True):
    key_id: str
    prefix: str
    created_at_ms: int
    api_key: str
    replaces_key_id: str | None = None


# A scope name (aex/core/credentials.py AccessScope) or "*": every scope the minting
# credential holds. Unknown names are refused by the core, naming the field.
ScopeName = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^(\*|[a-z]+)$")]


class TokenCreate(Strict, frozen=True):
    scopes: Annotated[list[ScopeName], msgspec.Meta(max_length=SCOPES_PER_TOKEN_MAX)] = (
        msgspec.field(default_factory=lambda: ["*"])
    )
    ttl_s: Annotated[int, msgspec.Meta(ge=60, le=86_400)] = 3_600


class TokenCreated(msgspec.Struct, frozen=True):
    token: str
    token_type: str
    expires_in_s: int
    scopes: list[str] = msgspec.field(default_factory=list)  # what was granted ("*" expanded)


class ProviderCreate(Strict, frozen=True):
    display_text_fields = ("name",)
    name: Name
    type: Literal["AI_AGENT"]
    capabilities: Annotated[list[Label], msgspec.Meta(min_length=1, max_length=100)]
    category: Label
    endpoint: Endpoint | None = None


class ProviderUpdate(Strict, frozen=True):
    display_text_fields = ("name",)
    name: Name | None = None
    capabilities: Annotated[list[Label], msgspec.Meta(min_length=1, max_length=100)] | None = None
    category: Label | None = None
    endpoint: Endpoint | None = None


class ProviderView(msgspec.Struct, frozen=True):
    provider_id: str
    tenant_id: str
    name: str
    type: str
    capabilities: tuple[str, ...]
    category: str
    endpoint: str | None
    created_at_ms: int
    updated_at_ms: int


class ProviderPage(msgspec.Struct, frozen=True):
    """GET /v1/providers: newest first; pass `next_cursor` as `starting_after` while
    `has_more`."""

    data: list[ProviderView]
    has_more: bool
    next_cursor: str | None


class ProviderCreated(msgspec.Struct, frozen=True):
    provider_id: str
    name: str
    api_key: str
    api_secret: str
    webhook_secret: str


class WebhookSecretCreated(msgspec.Struct, frozen=True):
    provider_id: str
    webhook_secret: str


class SubscriptionCreate(Strict, frozen=True):
    provider_id: Identifier
    categories: Annotated[list[Pattern], msgspec.Meta(min_length=1, max_length=50)]
    capabilities: Annotated[list[Pattern], msgspec.Meta(max_length=100)] = msgspec.field(
        default_factory=list
    )


class SubscriptionView(msgspec.Struct, frozen=True):
    subscription_id: str
    provider_id: str
    categories: tuple[str, ...]
    capabilities: tuple[str, ...]
    created_at_ms: int


class SubscriptionPage(msgspec.Struct, frozen=True):
    """GET /v1/subscriptions: newest first; pass `next_cursor` as `starting_after` while
    `has_more`."""

    data: list[SubscriptionView]
    has_more: bool
    next_cursor: str | None


class DepositCreate(Strict, frozen=True):
    tenant_id: Identifier
    amount: Decimal
    currency: Currency


class WithdrawalCreate(Strict, frozen=True):
    tenant_id: Identifier
    amount: Decimal
    currency: Currency


class BalanceView(msgspec.Struct, frozen=True):
    """A wallet: `available` cash (withdrawable), `held` escrow, and `credit` (the token bank's
    prepaid credit: spent on work before cash, never withdrawn), expiring at
    `credit_expires_at_ms` (null without credit)."""

    tenant_id: str
    currency: str
    available: str
    held: str
    credit: str
    credit_expires_at_ms: TimeMs | None


class MoneyMovement(msgspec.Struct, frozen=True):
    operation_id: str
    kind: str
    tenant_id: str
    amount: str
    currency: str
    replayed: bool
    balance: BalanceView


class TransactionView(msgspec.Struct, frozen=True):
    """One journal entry as it moved the caller's wallet (signed decimal strings)."""

    entry_id: int
    operation_id: str
    kind: str
    available_change: str
    held_change: str
    currency: str
    created_at_ms: int
    credit_change: str  # the token bank's credit bucket


class TransactionPage(msgspec.Struct, frozen=True):
    """GET /v1/transactions: newest entry first; pass `next_cursor` (an entry id) as
    `starting_after` while `has_more`."""

    data: list[TransactionView]
    has_more: bool
    next_cursor: int | None


class ReviewNote(Strict, frozen=True):
    """The operator's approve / reject body; the core keeps a note of up to 256 characters."""

    display_text_fields = ("note",)
    note: Annotated[str, msgspec.Meta(max_length=limits.cert_scope_chars_max)] = ""


class Revocation(Strict, frozen=True):
    """A revoke body: an RFC 5280 reason code (0 unspecified; the core checks the code)."""

    reason: int = 0


# ---------------------------------------------------------------------------------------------
# Decoding

S = TypeVar("S", bound=Strict)
_FREE_FORM = msgspec.json.Decoder(float_hook=Decimal)


def decode_json(raw: bytes) -> object:
    """A free-form body: every non-integer number as Decimal (money is never read through a
    float), nesting at most limits.request_json_depth_max (422 body-too-deep otherwise)."""
    try:
        decoded = _FREE_FORM.decode(raw or b"null")
    except msgspec.DecodeError as error:
        raise ProblemError(422, "invalid-request", f"malformed JSON: {error}") from error
    except RecursionError:
        # ~1,000 levels: far past the limit; named by the same scan, which stops at the limit.
        raise _too_deep(raw) from None
    # Fewer brackets than the limit cannot nest deeper than it: the scan only for the others.
    brackets = raw.count(b"[") + raw.count(b"{")
    depth_max = limits.request_json_depth_max
    if brackets > depth_max and json_text_too_deep(raw, depth_max=depth_max) is not None:
        raise _too_deep(raw)
    return decoded


def decode_struct(raw: bytes, shape: type[S], *, empty: bytes = b"") -> S:
    """A typed body, strictly: unknown fields, wrong types and coercions are 422 naming the
    field; a display-text field holding a control or bidi character is 422 naming it. The
    Struct's shape bounds the nesting. `empty` stands for a missing body (e.g. b"{}")."""
    try:
        decoded = msgspec.json.decode(raw or empty, type=shape, strict=True)
    except msgspec.ValidationError as error:
        raise _invalid(str(error)) from None
    except msgspec.DecodeError as error:
        raise ProblemError(422, "invalid-request", f"malformed JSON: {error}") from error
    except RecursionError:  # a value of a free-form (Any) member, ~1,000 levels deep
        raise _too_deep(raw) from None
    for field in shape.display_text_fields:
        value = getattr(decoded, field)
        rejected = None if value is None else check_display_text(value, field=field)
        if rejected is not None:
            raise problem_for_rejected(rejected)
    return decoded


class StrictRequest(Request[Any, Any, Any]):
    """The app's request class: a typed handler's `data` is decoded by `decode_struct`, so
    Litestar's lenient conversion (numeric strings to integers) never sees it; the Struct
    instance passes its signature model unchanged."""

    async def json(self) -> Any:
        shape = _data_shape(self.route_handler)
        if shape is None:
            return decode_json(await self.body())
        return decode_struct(await self.body(), shape)


# Handler parameters Litestar fills from the connection itself, never from the query string.
_RESERVED_PARAMETERS = frozenset(
    {"request", "data", "state", "scope", "headers", "cookies", "query", "socket", "body"}
)
# At most this many unknown parameters are named in one answer.
_UNKNOWN_NAMED_MAX = 8


def refuse_unknown_query(connection: Any, handler: Any) -> None:
    """The application's guard for the API's query strings: a parameter the route does not
    declare (a misspelt filter, `?state=` for `?status=`) is 422 `invalid-request` naming it,
    never silently ignored, so a client cannot believe it filtered what it did not."""
    if not connection.scope["query_string"] or not connection.scope["path"].startswith("/v1/"):
        return
    declared = set(handler.parsed_fn_signature.parameters) - _RESERVED_PARAMETERS
    known = declared - set(handler.resolve_dependencies())
    unknown = sorted(set(connection.query_params) - known)[:_UNKNOWN_NAMED_MAX]
    if unknown:
        raise ProblemError(
            422,
            "invalid-request",
            f"this route takes no query parameter {unknown[0]!r}",
            errors=tuple(FieldError(name, "unknown_parameter") for name in unknown),
        )


def _data_shape(handler: Any) -> type[Strict] | None:
    # The handler's `data` annotation when it is one of our Structs (the parsed signature is
    # cached on the handler by Litestar).
    field = handler.parsed_fn_signature.parameters.get("data")
    found = None if field is None else field.annotation
    return found if isinstance(found, type) and issubclass(found, Strict) else None


def _too_deep(raw: bytes) -> ProblemError:
    depth_max = limits.request_json_depth_max
    field = json_text_too_deep(raw, depth_max=depth_max) or "body"
    detail = f"at most {depth_max} levels of nested arrays and objects"
    rejected = Rejected(BodyRejectReason.BODY_TOO_DEEP, field, detail)
    return problem_for_rejected(rejected)


# msgspec names the offending path and field: "Expected `int`, got `str` - at `$.ttl_s`",
# "Object contains unknown field `x` - at `$.budget`", "Object missing required field `name`".
_AT_PATH = re.compile(r"at `\$\.?([^`]*)`")
_NAMED = re.compile(r"field `([^`]*)`")


def _invalid(message: str) -> ProblemError:
    at_path, named = _AT_PATH.search(message), _NAMED.search(message)
    parts = [m.group(1) for m in (at_path, named) if m is not None and m.group(1)]
    field = ".".join(parts) or "body"
    return ProblemError(
        422, "invalid-request", message, errors=(FieldError(field, message.split(" - ")[0]),)
    )


class PlanPurchase(Strict, frozen=True):
    """POST /v1/plan: the plan to buy, upgrade or downgrade to, and for the per-agent plans
    (Professional, Business) the agents paid for (docs/payments.md "Billing")."""

    plan: Plan
    agents: int = 1
