"""Writes docs/lifecycles.md from the lifecycle tables: `python -m tools.render_lifecycles`."""

from __future__ import annotations

from pathlib import Path

from aex.core.lifecycle import render_lifecycles_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "lifecycles.md"


def main() -> None:
    DOC.write_text(render_lifecycles_markdown())
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
