"""aex/core stays pure: no I/O, clock, randomness, logging or HTTP imports (STYLE.md 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "aex" / "core"

FORBIDDEN_MODULES = {
    "duckdb",
    "sqlite3",
    "litestar",
    "time",
    "random",
    "os",
    "logging",
    "socket",
    "subprocess",
    "pathlib",
    "io",
    "psycopg",
    "redis",
    "nats",
    "httpx",
    "uvicorn",
    "asyncio",
    "threading",
    "secrets",
    "uuid",
    "serve",
}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "open", "print", "input"}


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def forbidden_uses(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in FORBIDDEN_CALLS:
                found.append(f"line {node.lineno}: call {name}()")
            continue
        else:
            continue
        found += [
            f"line {node.lineno}: import {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES
        ]
    return found


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_core_module_has_no_io_clock_or_randomness(path: Path) -> None:
    assert forbidden_uses(ast.parse(path.read_text())) == []


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: p.name)
def test_core_module_opens_with_its_rule(path: Path) -> None:
    if path.name == "__init__.py":
        return
    assert path.read_text().startswith("# Rule:"), f"{path.name} must open with a '# Rule:' line"


def test_purity_check_catches_a_clock_read() -> None:
    assert forbidden_uses(ast.parse("import time\nfrom datetime import datetime\ndatetime.now()"))
