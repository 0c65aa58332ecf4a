"""The workbench notebooks run top to bottom (so they never rot) and are stored without outputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path: Path) -> None:
    """At the small size (AEX_NOTEBOOK_SIZE unset: what `make test` runs); every chart it draws
    carries its data inline (no URL to fetch: the notebooks render with no network)."""
    from nbclient import NotebookClient

    book = nbformat.read(path, as_version=4)
    NotebookClient(
        book, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    charts = [spec for cell in book.cells for spec in _chart_specs(cell)]
    for spec in charts:
        assert not list(_urls(spec)), (path.name, list(_urls(spec)))
    if path.stem.startswith(("01", "02", "03")):  # the notebooks of this repository's study
        assert charts, path.name  # draw charts, and the check above saw them


def _chart_specs(cell: Any) -> Iterator[object]:
    # Altair's output: a Vega-Lite mime bundle, or (altair's default renderer) HTML that hands
    # the spec to vegaEmbed as the first argument of `(function(spec, embedOpt){...})(SPEC, ...)`
    for output in cell.get("outputs", []):
        for mime, data in output.get("data", {}).items():
            if mime.startswith("application/vnd.vegalite"):
                yield data
            elif mime == "text/html" and "vegaEmbed" in data:
                start = data.index("})(", data.index("function(spec, embedOpt)")) + 3
                spec, _ = json.JSONDecoder().raw_decode(data, start)
                yield spec


def _urls(spec: object) -> Iterator[str]:
    # a Vega-Lite spec's data URLs: `{"data": {"url": ...}}` anywhere (layers, facets, concat)
    if isinstance(spec, dict):
        data = spec.get("data")
        if isinstance(data, dict) and "url" in data:
            yield str(data["url"])
        for value in spec.values():
            yield from _urls(value)
    elif isinstance(spec, list):
        for value in spec:
            yield from _urls(value)
