"""One time format (docs/api.md "Times"): every timestamp the API takes or gives is an integer
count of milliseconds since the Unix epoch (UTC) in a field whose name ends in `_ms`. This walks
the whole OpenAPI document (every component schema, every inline schema, every parameter) and
fails on a property whose name looks like a time but is not an integer ending in `_ms`."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from serve.app import build_litestar
from serve.settings import Settings
from serve.stores.sqlite import SqliteStore

# A name looks like a time when one of its `_`-separated words is one of these, or it is a
# W3C VC / X.509 validity name.
TIME_WORDS = frozenset(
    {"at", "time", "times", "timestamp", "date", "expires", "expiry", "until", "since"}
)
VALIDITY_NAMES = frozenset({"validfrom", "validuntil", "notbefore", "not_before", "notafter"})
# The documented exceptions (docs/api.md "Times"), each with its reason. Keep this short.
ALLOWED = {
    # A duration in seconds, not an instant: OAuth 2's `expires_in` (RFC 6749 §5.1).
    "expires_in_s": "duration",
    # The signed certificate documents (W3C VC `validFrom`/`validUntil`, and the AEX certificate,
    # CRL and CA documents' RFC 3339 strings) are not typed schemas today; should one become a
    # schema, its signed RFC 3339 members are allowed under a component named `Signed...`
    # (see `_allowed`), never elsewhere.
}
SIGNED_DOCUMENT_PREFIX = "Signed"


def _looks_like_time(name: str) -> bool:
    words = set(name.lower().split("_"))
    return bool(words & TIME_WORDS) or name.lower() in VALIDITY_NAMES or name.endswith("_ms")


def _allowed(component: str, name: str) -> bool:
    return name in ALLOWED or component.startswith(SIGNED_DOCUMENT_PREFIX)


def _is_integer(schema: dict[str, Any]) -> bool:
    # `int` or `int | None` (anyOf/oneOf with null); a $ref to an integer alias is not used.
    if schema.get("type") == "integer":
        return True
    options = schema.get("anyOf") or schema.get("oneOf") or []
    kinds = {option.get("type") for option in options}
    return "integer" in kinds and kinds <= {"integer", "null"}


@pytest.fixture(scope="module")
def document() -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        env = {"AEX_OPERATOR_KEY": "k" * 40, "AEX_JWT_SECRET": "s" * 40}
        settings = Settings.from_env(data_dir=data_dir, env=env)
        app = build_litestar(SqliteStore(data_dir / "openapi.sqlite3"), settings)
        assert app.openapi_schema is not None
        yield msgspec.json.decode(msgspec.json.encode(app.openapi_schema.to_schema()))


def _properties(node: Any, where: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    # Every (where, name, schema) of every `properties` member, at any depth.
    if isinstance(node, dict):
        for name, schema in (node.get("properties") or {}).items():
            if isinstance(schema, dict):
                yield where, name, schema
        for value in node.values():
            yield from _properties(value, where)
    elif isinstance(node, list):
        for value in node:
            yield from _properties(value, where)


def _every_property(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for component, schema in document["components"]["schemas"].items():
        yield from _properties(schema, component)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            where = f"{method.upper()} {path}"
            yield from _properties(operation, where)
            for parameter in operation.get("parameters", []):
                yield where, parameter["name"], parameter.get("schema", {})


def test_every_time_in_the_api_is_an_integer_ending_in_ms(document: dict[str, Any]) -> None:
    wrong = sorted(
        {
            f"{where}: {name}"
            for where, name, schema in _every_property(document)
            if _looks_like_time(name)
            and not _allowed(where, name)
            and not (name.endswith("_ms") and _is_integer(schema))
        }
    )
    assert not wrong, "times must be integer `_ms` fields (docs/api.md Times): " + ", ".join(wrong)


def test_the_walk_sees_the_times_it_should(document: dict[str, Any]) -> None:
    # The walk itself works: it finds the renamed fields, typed as integers with a description.
    found = {(where, name): schema for where, name, schema in _every_property(document)}
    for component, name in [
        ("VoucherCreate", "expires_at_ms"),
        ("VoucherView", "created_at_ms"),
        ("VoucherRedemption", "credit_expires_at_ms"),
        ("BalanceView", "credit_expires_at_ms"),
        ("ChallengeView", "expires_at_ms"),
        ("DelegationView", "expires_at_ms"),
    ]:
        schema = found[(component, name)]
        assert _is_integer(schema), (component, name, schema)
        described = [schema, *(schema.get("anyOf") or schema.get("oneOf") or [])]
        assert any("epoch" in option.get("description", "") for option in described), schema
    assert not re.search(
        r'"(created_at|expires_at|credit_expires_at)"', msgspec.json.encode(document).decode()
    )


def test_the_name_rule() -> None:
    for name in ("created_at", "validUntil", "credit_expires_at", "not_before", "now_ms"):
        assert _looks_like_time(name), name
    for name in ("mandate_id", "starting_after", "expired", "period", "estimated_duration"):
        assert not _looks_like_time(name), name
