"""The workbench notebooks run top to bottom (so they never rot) and are stored without outputs."""

from __future__ import annotations

from pathlib import Path

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
    """At the small size (AEX_NOTEBOOK_SIZE unset: what `make test` runs). Every chart is
    rendered in the kernel to SVG (vl-convert), so it shows with no network: no output hands a
    spec to a script that a browser would fetch (altair's default HTML loads Vega from a CDN)."""
    from nbclient import NotebookClient

    book = nbformat.read(path, as_version=4)
    NotebookClient(
        book, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [o for cell in book.cells for o in cell.get("outputs", [])]
    svgs = [o["data"]["image/svg+xml"] for o in outputs if "image/svg+xml" in o.get("data", {})]
    for output in outputs:
        for mime, data in output.get("data", {}).items():
            assert not mime.startswith("application/vnd.vega"), (path.name, mime)
            if mime == "text/html":
                assert "<script" not in data, (path.name, data[:200])
    for svg in svgs:
        assert svg.lstrip().startswith("<svg"), svg[:100]
        assert "<image" not in svg, "an SVG chart that still fetches an image"
    assert svgs, path.name  # every notebook of the workbench draws charts
