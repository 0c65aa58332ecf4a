# Rule: what an A2A agent card registered with the exchange must contain, which skill terms it is
# found by, how a provider search ranks its results, and the exchange's own agent card are
# decided here and only here.
#
# Theory of operation: A2A (a2a-protocol.org) has every agent publish an `AgentCard`: name,
# description, url, version, protocolVersion, capabilities, defaultInputModes/OutputModes and
# `skills`, each with an id, a name, a description and `tags` for discovery. A provider registers
# its card; `parse_agent_card` checks the fields the exchange relies on (names, an absolute
# http(s) url with a host, unique skill ids, bounded lists and strings) and keeps the rest of the
# document as sent. Search terms are the skills' ids and tags, case-folded
# (`skill_terms`): the driver indexes them, so a search is an index lookup, not a scan. Results
# rank by tier, then reputation score, then provider id (`rank_key`): the spec's "premium search
# placement" for higher tiers. The url's reachability (SSRF) is the driver's concern.
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from aex.core import limits
from aex.core.reasons import AgentCardRejectReason, Rejected
from aex.core.reputation import Tier
from aex.core.text import check_display_text

__all__ = [
    "A2A_PROTOCOL_VERSION",
    "AgentCard",
    "AgentSkill",
    "exchange_agent_card",
    "parse_agent_card",
    "rank_key",
    "skill_terms",
]

# The A2A specification version whose AgentCard shape the exchange reads and serves.
A2A_PROTOCOL_VERSION: Final = "0.3.0"

_R = AgentCardRejectReason


@dataclass(frozen=True, slots=True)
class AgentSkill:
    skill_id: str
    name: str
    description: str
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AgentCard:
    """A validated agent card: the fields the exchange reads, and the document as sent."""

    name: str
    description: str
    url: str
    version: str
    skills: tuple[AgentSkill, ...]
    document: Mapping[str, object]

    def __post_init__(self) -> None:
        assert 1 <= len(self.skills) <= limits.agent_card_skills_max


def _text(
    document: Mapping[str, object],
    key: str,
    path: str,
    *,
    required: bool = True,
    prose: bool = False,
) -> str | Rejected[AgentCardRejectReason]:
    value = document.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        return Rejected(_R.FIELD_REQUIRED, path, "a non-empty string")
    if len(value) > limits.agent_card_text_chars_max:
        return Rejected(_R.FIELD_TOO_LONG, path, f"at most {limits.agent_card_text_chars_max}")
    unsafe = check_display_text(value, field=path, multiline=prose)
    if unsafe is not None:  # control or bidirectional control characters (aex/core/text.py)
        return Rejected(_R.FIELD_HAS_CONTROL_CHARACTERS, path, unsafe.detail)
    return value


def _url(document: Mapping[str, object]) -> str | Rejected[AgentCardRejectReason]:
    url = _text(document, "url", "url")
    if isinstance(url, Rejected):
        return url
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        return Rejected(_R.URL_INVALID, "url", "an absolute http(s) URL with a host")
    if parts.username or parts.password:
        return Rejected(_R.URL_INVALID, "url", "no credentials in the URL")
    return url


def _tags(raw: object, path: str) -> tuple[str, ...] | Rejected[AgentCardRejectReason]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        return Rejected(_R.FIELD_REQUIRED, path, "a list of strings")
    if len(raw) > limits.agent_card_tags_per_skill_max:
        return Rejected(_R.TOO_MANY_TAGS, path, f"at most {limits.agent_card_tags_per_skill_max}")
    tags: list[str] = []
    for position, tag in enumerate(raw):
        if not isinstance(tag, str) or not tag.strip():
            return Rejected(_R.TAG_INVALID, f"{path}[{position}]", "a non-empty string")
        if check_display_text(tag, field=path) is not None:
            return Rejected(_R.TAG_INVALID, f"{path}[{position}]", "no control characters")
        if len(tag) > limits.agent_card_term_chars_max:
            return Rejected(_R.TAG_INVALID, f"{path}[{position}]", "too long")
        tags.append(tag)
    return tuple(tags)


def _skill(raw: object, path: str) -> AgentSkill | Rejected[AgentCardRejectReason]:
    if not isinstance(raw, dict):
        return Rejected(_R.SKILL_INVALID, path, "an object")
    fields: dict[str, str] = {}
    for key in ("id", "name", "description"):
        value = _text(
            raw, key, f"{path}.{key}", required=key != "description", prose=key == "description"
        )
        if isinstance(value, Rejected):
            return value
        fields[key] = value
    if len(fields["id"]) > limits.agent_card_term_chars_max:
        return Rejected(_R.FIELD_TOO_LONG, f"{path}.id", "too long")
    tags = _tags(raw.get("tags"), f"{path}.tags")
    if isinstance(tags, Rejected):
        return tags
    return AgentSkill(fields["id"], fields["name"], fields["description"], tags)


def _skills(raw: object) -> tuple[AgentSkill, ...] | Rejected[AgentCardRejectReason]:
    if not isinstance(raw, list) or not raw:
        return Rejected(_R.SKILLS_REQUIRED, "skills", "at least one skill")
    if len(raw) > limits.agent_card_skills_max:
        return Rejected(_R.TOO_MANY_SKILLS, "skills", f"at most {limits.agent_card_skills_max}")
    skills: list[AgentSkill] = []
    seen: set[str] = set()
    for position, item in enumerate(raw):
        skill = _skill(item, f"skills[{position}]")
        if isinstance(skill, Rejected):
            return skill
        if skill.skill_id.casefold() in seen:
            return Rejected(_R.SKILL_ID_DUPLICATE, f"skills[{position}].id", skill.skill_id)
        seen.add(skill.skill_id.casefold())
        skills.append(skill)
    return tuple(skills)


def parse_agent_card(document: object) -> AgentCard | Rejected[AgentCardRejectReason]:
    """Validates an A2A AgentCard as registered by a provider.

    Returns:
        The card, or the first refusal in precedence order (`AgentCardRejectReason`), naming
        the field as a path (`skills[2].tags[0]`).
    """
    if not isinstance(document, dict):
        return Rejected(_R.CARD_NOT_AN_OBJECT, "agent_card", "a JSON object")
    name = _text(document, "name", "name")
    if isinstance(name, Rejected):
        return name
    description = _text(document, "description", "description", required=False, prose=True)
    if isinstance(description, Rejected):
        return description
    url = _url(document)
    if isinstance(url, Rejected):
        return url
    version = _text(document, "version", "version")
    if isinstance(version, Rejected):
        return version
    skills = _skills(document.get("skills"))
    if isinstance(skills, Rejected):
        return skills
    return AgentCard(name, description, url, version, skills, document)


def skill_terms(card: AgentCard) -> tuple[tuple[str, str], ...]:
    """The (kind, term) pairs a card is found by: each skill id and each tag, case-folded."""
    terms: set[tuple[str, str]] = set()
    for skill in card.skills:
        terms.add(("skill", skill.skill_id.casefold()))
        terms.update(("tag", tag.casefold()) for tag in skill.tags)
    ordered = tuple(sorted(terms))
    assert len(ordered) <= limits.agent_card_skills_max * (1 + limits.agent_card_tags_per_skill_max)
    return ordered


def rank_key(tier: Tier, score: float, provider_id: str) -> tuple[int, float, str]:
    """Sort key for provider search: higher tier first, then higher score, then id."""
    return (-int(tier), -score, provider_id)


def exchange_agent_card(base_url: str, version: str) -> dict[str, object]:
    """The exchange's own A2A agent card: its skills are posting work and bidding on it."""

    def skill(skill_id: str, name: str, description: str, tags: Sequence[str]) -> dict[str, object]:
        return {"id": skill_id, "name": name, "description": description, "tags": list(tags)}

    return {
        "protocolVersion": A2A_PROTOCOL_VERSION,
        "name": "AEX Agent Exchange",
        "description": "A marketplace where consumers post work, AI agents bid, the exchange "
        "scores the bids, awards a contract and settles it with a 15% platform fee.",
        "url": f"{base_url}/v1",
        "preferredTransport": "HTTP+JSON",
        "version": version,
        "documentationUrl": f"{base_url}/schema",
        "capabilities": {"streaming": True, "pushNotifications": True},
        "defaultInputModes": ["application/json"],
        "defaultOutputModes": ["application/json"],
        "securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        },
        "security": [{"apiKey": []}, {"bearer": []}],
        "skills": [
            skill(
                "post_work",
                "Post work",
                "POST /v1/work: publish a job with a budget, requirements and success "
                "criteria; matching providers are notified and bid within the window.",
                ["marketplace", "consumer", "work"],
            ),
            skill(
                "bid",
                "Bid on work",
                "POST /v1/bids: offer a price, confidence and SLA on open work.",
                ["marketplace", "provider", "bid"],
            ),
            skill(
                "verify_certificate",
                "Verify a certificate",
                "POST /v1/certificates/verify: check an agent's ECDSA P-256 certificate "
                "and its earned reputation.",
                ["trust", "certificate"],
            ),
        ],
    }
