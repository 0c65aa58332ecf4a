# Rule: how a provider's subscription patterns match a piece of work's category and capability.
#
# A pattern is a literal ("TECHNOLOGY", "code_review"), the wildcard "*" (everything), or a
# prefix wildcard ending in "*" ("code.*" matches "code.review" and "code.audit"; "code*" also
# matches "codegen"). Matching is case-sensitive: categories are upper case by convention. A
# subscription matches work when one category pattern matches the category AND one capability
# pattern matches one of the work's capabilities; an empty capability list means "any".
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

__all__ = ["PATTERN_CHARS_MAX", "is_valid_pattern", "pattern_matches", "subscription_matches"]

PATTERN_CHARS_MAX: Final = 100
_PATTERN: Final = re.compile(r"\*|[A-Za-z0-9_.\-]+\*?")


def is_valid_pattern(pattern: str) -> bool:
    """A literal of letters, digits, "_", "." and "-", optionally ending in "*"; or "*"."""
    return len(pattern) <= PATTERN_CHARS_MAX and _PATTERN.fullmatch(pattern) is not None


def pattern_matches(pattern: str, value: str) -> bool:
    assert is_valid_pattern(pattern)
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def subscription_matches(
    categories: Sequence[str],
    capabilities: Sequence[str],
    *,
    category: str,
    work_capabilities: Sequence[str],
) -> bool:
    """True when the subscription (category and capability patterns) covers the work."""
    category_ok = any(pattern_matches(p, category) for p in categories)
    if not capabilities:
        return category_ok
    capability_ok = any(pattern_matches(p, c) for p in capabilities for c in work_capabilities)
    return category_ok and capability_ok
