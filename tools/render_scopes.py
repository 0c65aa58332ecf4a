"""Writes the route → scope table of docs/api.md from the routes' own declarations:
`python -m tools.render_scopes`. tests/serve/test_scopes.py fails when the table is stale."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from aex.core import ALL_SCOPES, PROVIDER_KEY_SCOPES, TENANT_KEY_SCOPES, AccessScope
from serve.gateway.callers import PUBLIC, RouteScope, route_scopes

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
BEGIN = "<!-- scopes:begin (python -m tools.render_scopes writes this table) -->"
END = "<!-- scopes:end -->"
_BLOCK = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)


def current_routes() -> list[RouteScope]:
    """The table of the application as `aex serve` builds it (on a throwaway SQLite file)."""
    from serve.app import build_litestar
    from serve.settings import Settings
    from serve.stores.sqlite import SqliteStore

    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        env = {"AEX_OPERATOR_KEY": "k" * 40, "AEX_JWT_SECRET": "s" * 40}
        settings = Settings.from_env(data_dir=data_dir, env=env)
        store = SqliteStore(data_dir / "scopes.sqlite3")
        return route_scopes(build_litestar(store, settings))


def _holders(scope: AccessScope) -> str:
    holders = [
        name
        for name, held in (
            ("tenant key", TENANT_KEY_SCOPES),
            ("provider key", PROVIDER_KEY_SCOPES),
            ("operator key", ALL_SCOPES),
        )
        if scope in held
    ]
    if scope in TENANT_KEY_SCOPES:
        holders.append("JWT minted with it")
    return ", ".join(holders)


def render_scope_table(rows: list[RouteScope]) -> str:
    lines = [
        BEGIN,
        "",
        "| scope | held by |",
        "|---|---|",
        *(f"| `{scope.value}` | {_holders(scope)} |" for scope in AccessScope),
        f"| `{PUBLIC}` | no credential needed |",
        "",
        "| method | route | scope |",
        "|---|---|---|",
    ]
    for row in rows:
        scope = f"`{row.scope}`"
        if row.public_when is not None:
            scope += f" (`{PUBLIC}` with AEX_{row.public_when.upper()}=1)"
        lines.append(f"| {row.method} | `{row.path}` | {scope} |")
    lines += ["", END]
    return "\n".join(lines)


def rendered_doc(text: str, rows: list[RouteScope]) -> str:
    assert _BLOCK.search(text) is not None, f"{DOC} has no {BEGIN} ... {END} block"
    return _BLOCK.sub(lambda _: render_scope_table(rows), text)


def main() -> None:
    DOC.write_text(rendered_doc(DOC.read_text(), current_routes()))
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
