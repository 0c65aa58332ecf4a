"""The command line's one error rule: a user's mistake is one line on stderr and exit 2.

A command raises `UserError` (or lets a known input error through: a missing or unreadable
file, malformed JSON or TOML, an exchange setting refused at startup, an unknown scenario);
`aex.cli.main` prints `aex COMMAND: error: ...` and exits 2. Anything else is a bug: one line
and exit 1. `AEX_DEBUG=1` re-raises either, with its traceback.
"""

from __future__ import annotations

import json
import sys
import tomllib

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


class UserError(Exception):
    """A mistake in what the user asked for; its message says what and how to fix it."""


# Errors defined by modules a command may have imported, by module and class name: looked up
# in sys.modules so that `aex --help` never imports the server or the simulator.
_FOREIGN_USER_ERRORS: tuple[tuple[str, str], ...] = (
    ("serve.settings", "ImproperlyConfiguredError"),
    ("aex.sim.scenario", "ScenarioError"),
    ("aex.ca.keystore", "KeyStoreError"),
    ("duckdb", "IOException"),
    ("duckdb", "CatalogException"),
)


def user_error_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [
        UserError,
        OSError,  # missing file, permission denied, address in use, ...
        json.JSONDecodeError,
        tomllib.TOMLDecodeError,
        UnicodeDecodeError,
    ]
    for module_name, class_name in _FOREIGN_USER_ERRORS:
        module = sys.modules.get(module_name)
        error = getattr(module, class_name, None) if module is not None else None
        if isinstance(error, type) and issubclass(error, BaseException):
            types.append(error)
    return tuple(types)


# Which extra brings a third-party module a command imports (pyproject.toml's extras).
_EXTRA_OF_MODULE: dict[str, str] = {
    **dict.fromkeys(
        (
            "litestar",
            "uvicorn",
            "msgspec",
            "jwt",
            "prometheus_client",
            "swagger_ui",
            "psycopg",
            "psycopg_pool",
            "redis",
            "nats",
            "dotenv",
        ),
        "server",
    ),
    **dict.fromkeys(
        ("polars", "scipy", "duckdb", "pyarrow", "tqdm", "altair", "jupyterlab", "SALib"),
        "workbench",
    ),
}


def missing_module(error: BaseException) -> str | None:
    """For a module that is not installed, the one line that says which extra brings it."""
    if not isinstance(error, ModuleNotFoundError) or not error.name:
        return None
    top = error.name.split(".")[0]
    extra = _EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    return f"this command needs {top!r}, from the {extra} extra: pip install 'aex[{extra}]'"


def one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        text = f"{error.strerror}{where}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())
