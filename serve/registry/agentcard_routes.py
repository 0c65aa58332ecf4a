"""A2A agent cards over HTTP: register (the provider's key or its owner tenant), read and
search (any authenticated caller), and the exchange's own card at the A2A well-known path."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, put
from litestar.datastructures import State
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK

from aex.core import AccessScope, exchange_agent_card, limits
from serve.gateway.callers import PUBLIC, needs, provider_or_tenant_caller
from serve.gateway.openapi import shapes
from serve.gateway.problems import PROBLEM_RESPONSES
from serve.market.schemas import (
    AgentCardDocument,
    AgentCardRegistered,
    ProviderSearch,
)
from serve.registry.agentcards import AgentCards

Json = dict[str, Any]

CARD_EXAMPLE: Json = {
    "name": "CodeReviewBot",
    "description": "Reviews Go and Python services for security issues",
    "url": "https://agents.example.com/code-review",
    "version": "1.4.0",
    "skills": [
        {"id": "code_review", "name": "Code review", "tags": ["go", "security"]},
    ],
}


def _cards(request: Request[Any, Any, State]) -> AgentCards:
    cards: AgentCards = request.app.state.agent_cards
    return cards


@put(
    "/v1/providers/{provider_id:str}/agent-card",
    responses=PROBLEM_RESPONSES,
    status_code=HTTP_200_OK,
    sync_to_thread=True,
    tags=["providers"],
    operation_id="RegisterAgentCard",
    opt=needs(AccessScope.PROVIDERS)
    | shapes(body=AgentCardDocument, ok=AgentCardRegistered, example=CARD_EXAMPLE),
)
def register_agent_card(request: Request[Any, Any, State], provider_id: str, body: bytes) -> Json:
    """Registers (or replaces) the provider's A2A AgentCard; its skills and tags are indexed."""
    caller = provider_or_tenant_caller(request)
    return _cards(request).register(caller, provider_id, body)


@get(
    "/v1/providers/{provider_id:str}/agent-card",
    responses=PROBLEM_RESPONSES,
    sync_to_thread=True,
    tags=["providers"],
    opt=needs(AccessScope.READ) | shapes(ok=AgentCardDocument),
)
def agent_card(request: Request[Any, Any, State], provider_id: str) -> Json:
    """The provider's AgentCard as registered."""
    return _cards(request).card(provider_id)


@get(
    "/v1/providers/search",
    responses=PROBLEM_RESPONSES,
    sync_to_thread=True,
    tags=["providers"],
    opt=needs(AccessScope.READ) | shapes(ok=ProviderSearch),
)
def search_providers(
    request: Request[Any, Any, State],
    skill: Annotated[str | None, Parameter(max_length=limits.agent_card_term_chars_max)] = None,
    tag: Annotated[str | None, Parameter(max_length=limits.agent_card_term_chars_max)] = None,
    min_tier: Annotated[str | None, Parameter(max_length=16)] = None,
    limit: Annotated[int, Parameter(description="results, 1 to 100")] = 20,
) -> Json:
    """Providers whose agent card has the skill id and/or tag, best tier and score first."""
    return _cards(request).search(skill=skill, tag=tag, min_tier=min_tier, limit=limit)


@get(
    "/.well-known/agent-card.json",
    sync_to_thread=False,
    tags=["providers"],
    opt=needs(PUBLIC) | shapes(ok=AgentCardDocument),
)
def exchange_card(request: Request[Any, Any, State]) -> Json:
    """The exchange's own A2A AgentCard: post work, bid, verify certificates."""
    base = str(request.base_url).rstrip("/")
    return exchange_agent_card(base, request.app.state.version)


AGENT_CARD_HANDLERS = [register_agent_card, agent_card, search_providers, exchange_card]
