"""The page parameters every list takes (docs/market-api.md "Lists"): `limit` and
`starting_after`, declared once so that each list states the same constraints in the OpenAPI
document and refuses the same malformed values (422 `invalid-request` naming the parameter)
before any query runs."""

from __future__ import annotations

from typing import Annotated, Final

from litestar.params import Parameter

PAGE_MAX: Final = 100  # rows of one page of any list
PAGE_DEFAULT: Final = 20
# Every id the exchange mints is `prefix_hex` (serve/identity/security.py `new_id`); a cursor
# of any other shape names no row, and is refused before it reaches a query (PostgreSQL text
# cannot hold NUL: `make fuzz` found a 500 there).
ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"


def page_size(limit: int) -> int:
    """A page's row count within the bounds (the routes check them already; a use case called
    from elsewhere gets the same bounds)."""
    return max(1, min(limit, PAGE_MAX))


Limit = Annotated[
    int, Parameter(ge=1, le=PAGE_MAX, default=PAGE_DEFAULT, description="rows per page")
]
Cursor = Annotated[
    str | None,
    Parameter(
        min_length=1,
        max_length=64,
        pattern=ID_PATTERN,
        description="the previous page's `next_cursor`",
    ),
]
