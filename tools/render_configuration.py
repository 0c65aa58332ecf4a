"""Render docs/configuration.md and `.env.example` from serve/configuration.py's table.

    python -m tools.render_configuration

tests/serve/test_configuration.py fails when either file differs from what this writes.
"""

from __future__ import annotations

from pathlib import Path

from serve.configuration import env_example, markdown

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"
ENV_EXAMPLE = ROOT / ".env.example"


if __name__ == "__main__":
    DOC.write_text(markdown())
    ENV_EXAMPLE.write_text(env_example())
