"""docs/operations.md names only settings the server reads, and the files it describes exist."""

from __future__ import annotations

import re

from tests.deploy.tools import OPERATIONS, ROOT, settings_read


def test_every_aex_variable_in_the_guide_is_read_by_the_code() -> None:
    # The full table is docs/configuration.md (tests/serve/test_configuration.py); the guide
    # names the ones an operator sets first, and only ones that exist.
    named = set(re.findall(r"\bAEX_[A-Z0-9_]+\b", OPERATIONS.read_text()))
    assert {"AEX_DATABASE_URL", "AEX_OPERATOR_KEY", "AEX_JWT_SECRET"} <= named
    assert named <= settings_read(), sorted(named - settings_read())


def test_the_guide_points_to_the_configuration_table() -> None:
    assert "configuration.md" in OPERATIONS.read_text()


def test_the_files_the_guide_names_exist() -> None:
    text = OPERATIONS.read_text()
    paths = set(
        re.findall(r"`((?:deploy|docs|serve|aex|tests)/[\w./-]+|Dockerfile|compose\.yaml)`", text)
    )
    assert "deploy/prometheus/alerts.yml" in paths
    missing = sorted(p for p in paths if not (ROOT / p.rstrip("/")).exists())
    assert not missing, missing


def test_the_guide_is_linked_from_the_readme_and_the_architecture() -> None:
    assert "docs/operations.md" in (ROOT / "README.md").read_text()
    assert "operations.md" in (ROOT / "docs" / "ARCHITECTURE.md").read_text()
