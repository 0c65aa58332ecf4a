"""A2A agent cards: a provider registers its card, the exchange indexes its skills and tags,
callers search providers by skill or tag ranked by tier and reputation.

The rules (what a card must hold, its search terms, the ranking) are aex/core/agentcard.py;
this driver stores a card and its terms in one transaction of the market's database (with its
`provider.agent_card_registered` event in the outbox), and answers searches from the term
index (`agent_card_terms`, primary key (kind, term, provider_id)): a search reads the
providers that carry the term, never every card. Candidates are ranked by their reputation as
the market computes it (serve/market/usecases.py `provider_reputation`); a search looks at no
more than `SEARCH_CANDIDATES_MAX` providers carrying the term.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from aex.core import (
    Rejected,
    Tier,
    check_display_text,
    limits,
    parse_agent_card,
    rank_key,
    skill_terms,
)
from aex.core.events import EventType
from serve.gateway.problems import FieldError, ProblemError, problem_for_rejected
from serve.gateway.schemas import decode_json
from serve.identity.security import Principal, PrincipalKind, now_ms
from serve.market.usecases import Market, Tx, provider_reputation, to_json_text
from serve.stores.rows import many, scalar, select_list

# Providers one search ranks (those carrying the term, in id order): each costs one reputation
# read; 500 keeps a search under ~100 ms on SQLite while far exceeding one skill's specialists.
SEARCH_CANDIDATES_MAX = 500
TIER_NAMES = {tier.name: tier for tier in Tier}


def _not_found() -> ProblemError:
    return ProblemError(404, "not-found", "provider not found")


class AgentCards:
    def __init__(self, market: Market) -> None:
        self.market = market

    def register(self, caller: Principal, provider_id: str, raw: bytes) -> dict[str, object]:
        if len(raw) > limits.agent_card_bytes_max:
            raise ProblemError(
                413,
                "agent-card-too-large",
                f"at most {limits.agent_card_bytes_max} bytes",
                errors=(FieldError("agent_card", "agent_card_too_large"),),
            )
        # depth-bounded, exact numbers, no 1e999 (serve/gateway/schemas.py)
        document = decode_json(raw)
        card = parse_agent_card(document)
        if isinstance(card, Rejected):
            raise problem_for_rejected(card)
        terms = skill_terms(card)

        def write(tx: Tx) -> dict[str, object]:
            owner = _owner_for_update(tx, provider_id)
            if owner is None or not _may_manage(caller, provider_id, owner):
                raise _not_found()
            tx.execute("DELETE FROM agent_card_terms WHERE provider_id = ?", (provider_id,))
            tx.execute("DELETE FROM agent_cards WHERE provider_id = ?", (provider_id,))
            tx.execute(
                "INSERT INTO agent_cards (provider_id, tenant_id, name, url, version, document,"
                " updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    provider_id,
                    owner,
                    card.name,
                    card.url,
                    card.version,
                    to_json_text(card.document),
                    tx.now_ms,
                ),
            )
            for kind, term in terms:
                tx.execute(
                    "INSERT INTO agent_card_terms (kind, term, provider_id) VALUES (?, ?, ?)",
                    (kind, term, provider_id),
                )
            view = {
                "provider_id": provider_id,
                "name": card.name,
                "url": card.url,
                "version": card.version,
                "skills": [skill.skill_id for skill in card.skills],
                "updated_at_ms": tx.now_ms,
            }
            tx.emit(EventType.PROVIDER_AGENT_CARD_REGISTERED, provider_id, view)
            return view

        return self.market.write(write)

    def card(self, provider_id: str) -> dict[str, Any]:
        rows = self.market.db.read(
            "SELECT document FROM agent_cards WHERE provider_id = ?", (provider_id,)
        )
        if not rows:
            raise ProblemError(404, "not-found", "no agent card for this provider")
        document: dict[str, Any] = json.loads(rows[0][0])
        return document

    def search(
        self, *, skill: str | None, tag: str | None, min_tier: str | None, limit: int
    ) -> dict[str, object]:
        floor = _tier_floor(min_tier)
        if not 1 <= limit <= limits.provider_search_results_max:
            raise ProblemError(
                422,
                "limit-out-of-range",
                f"1 to {limits.provider_search_results_max}",
                errors=(FieldError("limit", "limit_out_of_range"),),
            )
        terms = [("skill", skill), ("tag", tag)]
        for kind, value in terms:
            # Registered terms hold no control character (aex/core/agentcard.py); a term that
            # does is refused, naming it, before it reaches the database (PostgreSQL text
            # cannot hold NUL: this was a 500 there and an empty answer on SQLite).
            rejected = None if value is None else check_display_text(value, field=kind)
            if rejected is not None:
                raise problem_for_rejected(rejected)
        asked = [(kind, value.casefold()) for kind, value in terms if value]
        if not asked:
            raise ProblemError(
                422,
                "search-term-required",
                "name a skill or a tag",
                errors=(FieldError("skill", "search_term_required"),),
            )
        with self.market.db.reader() as connection:
            candidates = _candidates(connection, asked)
            now = now_ms()
            ranked = []
            for provider_id, name, url in candidates:
                reputation = provider_reputation(connection, provider_id, now)
                tier = Tier(int(reputation.tier))
                if tier < floor:
                    continue
                key = rank_key(tier, reputation.score, provider_id)
                ranked.append((key, provider_id, name, url, tier, reputation))
        ranked.sort(key=lambda entry: entry[0])
        results = [
            {
                "provider_id": provider_id,
                "name": name,
                "url": url,
                "tier": tier.name,
                "score": round(reputation.score, 4),
                "contracts": int(reputation.contracts),
            }
            for _, provider_id, name, url, tier, reputation in ranked[:limit]
        ]
        return {"results": results, "truncated": len(candidates) >= SEARCH_CANDIDATES_MAX}


def _tier_floor(min_tier: str | None) -> Tier:
    if min_tier is None:
        return Tier.BRONZE
    tier = TIER_NAMES.get(min_tier.upper())
    if tier is None:
        raise ProblemError(
            422,
            "min-tier-unknown",
            f"one of {', '.join(TIER_NAMES)}",
            errors=(FieldError("min_tier", "min_tier_unknown"),),
        )
    return tier


class _Candidate(NamedTuple):
    provider_id: str
    name: str
    url: str


def _candidates(connection: Any, asked: list[tuple[str, str]]) -> list[_Candidate]:
    # Providers carrying every asked term (skill and tag both given: both must match), active.
    joins = " ".join(
        f"JOIN agent_card_terms t{n} ON t{n}.provider_id = c.provider_id"
        f" AND t{n}.kind = ? AND t{n}.term = ?"
        for n in range(len(asked))
    )
    parameters: list[object] = [value for pair in asked for value in pair]
    found = connection.execute(
        f"SELECT {select_list(_Candidate, table='c')} FROM agent_cards c {joins}"  # noqa: S608 - fixed text
        " JOIN providers p ON p.provider_id = c.provider_id"
        " JOIN tenants tn ON tn.tenant_id = p.tenant_id AND tn.status = 'ACTIVE'"
        " ORDER BY c.provider_id LIMIT ?",
        (*parameters, SEARCH_CANDIDATES_MAX),
    )
    return many(_Candidate, found)


def _owner_for_update(tx: Tx, provider_id: str) -> str | None:
    owner = scalar(
        tx.execute(
            f"SELECT tenant_id FROM providers WHERE provider_id = ?{tx.for_update}",  # noqa: S608
            (provider_id,),
        )
    )
    return None if owner is None else str(owner)


def _may_manage(caller: Principal, provider_id: str, owner: str) -> bool:
    # The provider's own key, or its owner tenant; anyone else learns nothing (404).
    if caller.kind is PrincipalKind.PROVIDER:
        return caller.provider_id == provider_id
    return caller.kind is PrincipalKind.TENANT and caller.tenant_id == owner
