"""docs/certificates.md shows the lifecycle diagram generated from the table, not drawn."""

from __future__ import annotations

from pathlib import Path

from aex.core.certs import lifecycle_mermaid

DOC = Path(__file__).resolve().parents[2] / "docs" / "certificates.md"


def test_docs_lifecycle_diagram_is_generated_from_the_transition_table() -> None:
    assert lifecycle_mermaid() in DOC.read_text()
