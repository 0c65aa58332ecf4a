"""A2A agent cards in the core (aex/core/agentcard.py): what a card must hold, the terms it is
found by, the search ranking, and the exchange's own card."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from aex.core import (
    AgentCard,
    AgentCardRejectReason,
    Rejected,
    Tier,
    exchange_agent_card,
    limits,
    parse_agent_card,
    rank_key,
    skill_terms,
)


def document(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "CodeReviewBot",
        "url": "https://agents.example.com/a2a",
        "version": "1.0.0",
        "skills": [{"id": "code_review", "name": "Code review", "tags": ["Go", "security"]}],
    }
    return {**base, **changes}


def test_a_minimal_card_parses_and_keeps_the_document() -> None:
    raw = document(extra={"kept": True})
    card = parse_agent_card(raw)
    assert isinstance(card, AgentCard)
    assert card.document == raw
    assert card.skills[0].tags == ("Go", "security")


def test_terms_are_skill_ids_and_tags_case_folded() -> None:
    card = parse_agent_card(document())
    assert isinstance(card, AgentCard)
    assert skill_terms(card) == (("skill", "code_review"), ("tag", "go"), ("tag", "security"))


def test_the_first_failing_check_names_its_field() -> None:
    refused = parse_agent_card(document(name="", url="nope"))
    assert isinstance(refused, Rejected)
    assert (refused.reason, refused.field) == (AgentCardRejectReason.FIELD_REQUIRED, "name")


def test_a_card_is_an_object() -> None:
    refused = parse_agent_card([document()])
    assert isinstance(refused, Rejected)
    assert refused.reason is AgentCardRejectReason.CARD_NOT_AN_OBJECT


def test_control_characters_are_refused() -> None:
    refused = parse_agent_card(document(name="Bot\x00"))
    assert isinstance(refused, Rejected)
    assert refused.reason is AgentCardRejectReason.FIELD_HAS_CONTROL_CHARACTERS


def test_too_many_tags_are_refused() -> None:
    tags = [f"t{n}" for n in range(limits.agent_card_tags_per_skill_max + 1)]
    refused = parse_agent_card(document(skills=[{"id": "a", "name": "A", "tags": tags}]))
    assert isinstance(refused, Rejected)
    assert (refused.reason, refused.field) == (
        AgentCardRejectReason.TOO_MANY_TAGS,
        "skills[0].tags",
    )


@given(st.lists(st.text(min_size=1, max_size=20).filter(str.strip), min_size=1, max_size=30))
def test_any_card_within_the_limits_parses_or_names_a_skill_field(ids: list[str]) -> None:
    skills = [{"id": skill_id, "name": "n"} for skill_id in ids]
    result = parse_agent_card(document(skills=skills))
    if isinstance(result, Rejected):
        assert result.field.startswith("skills[")
    else:
        assert len({skill.skill_id.casefold() for skill in result.skills}) == len(ids)


@given(
    st.lists(
        st.tuples(st.sampled_from(list(Tier)), st.floats(0, 1), st.text(max_size=5)),
        max_size=20,
    )
)
def test_ranking_puts_higher_tiers_first_then_higher_scores(
    rows: list[tuple[Tier, float, str]],
) -> None:
    ranked = sorted(rows, key=lambda row: rank_key(*row))
    for before, after in itertools.pairwise(ranked):
        assert before[0] >= after[0]
        if before[0] == after[0]:
            assert before[1] >= after[1]


def test_the_exchange_card_is_itself_a_valid_card() -> None:
    own = exchange_agent_card("https://aex.example.com", "0.1.0")
    card = parse_agent_card(own)
    assert isinstance(card, AgentCard)
    assert {skill.skill_id for skill in card.skills} >= {"post_work", "bid"}
