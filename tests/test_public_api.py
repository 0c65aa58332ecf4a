"""The package surface of aex.core is deliberate: __all__ sorted, complete and importable."""

from __future__ import annotations

import aex.core


def isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical.
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_core_all_is_sorted() -> None:
    assert list(aex.core.__all__) == sorted(aex.core.__all__, key=isort_key)


def test_core_all_names_exist() -> None:
    missing = [name for name in aex.core.__all__ if not hasattr(aex.core, name)]
    assert missing == []


def test_core_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(aex.core).items()
        if not name.startswith("_") and not isinstance(value, type(aex.core))
    }
    assert public == set(aex.core.__all__)
