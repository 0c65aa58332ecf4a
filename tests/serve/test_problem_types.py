"""Every problem type the exchange can emit is documented in docs/problems.md."""

from __future__ import annotations

from serve.gateway.problems import PROBLEM_TYPE_BASE
from tools.problem_types import DOC, all_type_uris, raised_slugs, rendered_doc


def test_every_problem_type_the_code_can_emit_is_listed_in_docs_problems_md() -> None:
    documented = DOC.read_text()
    missing = sorted(
        uri
        for uri in all_type_uris()
        if f"`{uri.removeprefix(PROBLEM_TYPE_BASE)}`" not in documented
    )
    assert missing == [], f"add to docs/problems.md (python -m tools.problem_types): {missing}"


def test_docs_problems_md_is_the_rendered_table() -> None:
    # Regenerate with: .venv/bin/python -m tools.problem_types
    assert DOC.read_text() == rendered_doc()


def test_the_slug_scan_finds_slugs_raised_across_lines_and_by_the_gateway_helper() -> None:
    raised = raised_slugs()
    assert raised["search-term-required"] == 422  # ProblemError(\n 422,\n "search-term-required"
    assert raised["credential-revoked"] == 401  # _unauthorized("credential-revoked", ...)
    assert raised["insufficient-scope"] == 403


def test_every_gateway_and_route_problem_has_a_meaning() -> None:
    from tools.problem_types import MEANINGS, fallback_slugs, raised_slugs

    raised = {**fallback_slugs(), **raised_slugs()}
    assert sorted(slug for slug in raised if not MEANINGS.get(slug)) == []
