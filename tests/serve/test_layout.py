"""serve/ is one modular app laid out by domain (docs/ARCHITECTURE.md "serve/ by domain"): each
folder names a service of the spec, the composition root is the only code at the top, and no
module imports another that imports it back, not even from inside a function."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components

SERVE = Path(__file__).resolve().parents[2] / "serve"

# The spec's services (and the exchange's own billing) as serve/'s folders; stores/ holds the
# persistence every domain shares (protocols, migrations, the transaction drivers).
DOMAINS = frozenset(
    {
        "gateway",
        "telemetry",
        "identity",
        "registry",
        "market",
        "settlement",
        "credentials",
        "tokenbank",
        "billing",
        "certauth",
        "notifications",
        "dashboard",
        "stores",
    }
)
# The composition root: settings, the app factory, the wiring of use cases to stores, the
# background loops, and the two cross-cutting helpers every domain's driver may use.
ROOT_MODULES = frozenset(
    {
        "__init__",
        "app",
        "settings",
        "configuration",
        "services",
        "background",
        "breakers",
        "secret_box",
    }
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SERVE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SERVE.rglob("*.py")}


def _type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def _imported(tree: ast.AST, name: str, is_package: bool) -> Iterator[str]:
    """Every module named by an import anywhere in the tree (functions included), except under
    `if TYPE_CHECKING:` (no import at run time)."""

    def walk(node: ast.AST) -> Iterator[str]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child.test):
                yield from (n for orelse in child.orelse for n in walk(orelse))
                continue
            if isinstance(child, ast.Import):
                yield from (alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                module = child.module or ""
                if child.level:
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    base = package[: len(package) - child.level + 1]
                    module = ".".join([*base, module] if module else base)
                yield module
                yield from (f"{module}.{alias.name}" for alias in child.names)
            yield from walk(child)

    yield from walk(tree)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        tree = ast.parse(path.read_text())
        for imported in _imported(tree, name, path.name == "__init__.py"):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module."""
    names = sorted(graph.keys() | {n for targets in graph.values() for n in targets})
    position = {name: i for i, name in enumerate(names)}
    edges = [(position[a], position[b]) for a, targets in graph.items() for b in targets]
    rows, cols = zip(*edges, strict=True) if edges else ((), ())
    matrix = csr_array((np.ones(len(edges)), (rows, cols)), shape=(len(names), len(names)))
    _, labels = connected_components(matrix, directed=True, connection="strong")
    members: dict[int, list[str]] = {}
    for name, label in zip(names, labels, strict=True):
        members.setdefault(int(label), []).append(name)
    return sorted(group for group in members.values() if len(group) > 1)


def test_serve_has_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_function_level_imports_count_as_dependencies() -> None:
    tree = ast.parse("def f():\n    from serve.market import usecases\n")
    assert "serve.market.usecases" in set(_imported(tree, "serve.x", is_package=False))


def test_type_checking_imports_do_not_count() -> None:
    tree = ast.parse("if TYPE_CHECKING:\n    from serve.market import usecases\n")
    assert set(_imported(tree, "serve.x", is_package=False)) == set()


def test_serve_folders_are_the_domains() -> None:
    folders = {p.name for p in SERVE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == DOMAINS
    for folder in folders:
        assert (SERVE / folder / "__init__.py").exists(), folder


def test_only_the_composition_root_lives_at_the_top_of_serve() -> None:
    top = {p.stem for p in SERVE.glob("*.py")}
    assert top == ROOT_MODULES
