"""The package surface of aex.core is deliberate: the union of its modules' __all__ lists, each
sorted, no name exported twice, everything importable."""

from __future__ import annotations

from collections import Counter

import pytest

import aex.core


def isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical.
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


@pytest.mark.parametrize("module", aex.core.EXPORTING_MODULES, ids=lambda m: m.__name__)
def test_module_all_is_sorted(module: object) -> None:
    names = list(module.__all__)  # type: ignore[attr-defined]
    assert names == sorted(names, key=isort_key)


def test_no_name_is_exported_by_two_core_modules() -> None:
    counts = Counter(name for m in aex.core.EXPORTING_MODULES for name in m.__all__)
    assert [name for name, count in counts.items() if count > 1] == []


def test_core_all_names_exist() -> None:
    missing = [name for name in aex.core.__all__ if not hasattr(aex.core, name)]
    assert missing == []


def test_every_core_module_exports_through_the_package() -> None:
    import pkgutil

    modules = {
        info.name
        for info in pkgutil.iter_modules(aex.core.__path__)
        if not info.name.startswith("_") and info.name not in {"limits"}
    }
    assert modules == {m.__name__.rsplit(".", 1)[1] for m in aex.core.EXPORTING_MODULES}
