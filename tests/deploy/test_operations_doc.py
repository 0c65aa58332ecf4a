"""docs/operations.md names only settings the server reads, and the files it describes exist."""

from __future__ import annotations

import re

from tests.deploy.tools import OPERATIONS, ROOT, settings_read


def test_every_aex_variable_in_the_guide_is_read_by_the_code() -> None:
    named = set(re.findall(r"\bAEX_[A-Z0-9_]+\b", OPERATIONS.read_text()))
    assert {"AEX_DATABASE_URL", "AEX_OPERATOR_KEY", "AEX_JWT_SECRET"} <= named
    assert named <= settings_read(), sorted(named - settings_read())


def test_every_setting_the_server_reads_is_in_the_guide() -> None:
    named = set(re.findall(r"\bAEX_[A-Z0-9_]+\b", OPERATIONS.read_text()))
    # AEX_DATA_DIR is set by `aex serve --workers` for its own worker processes
    assert settings_read() - {"AEX_DATA_DIR"} <= named, sorted(settings_read() - named)


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
