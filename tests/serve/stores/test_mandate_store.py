"""AP2 mandates on the market's drivers (serve/credentials/mandates.py over
serve/stores/market_db.py): one contract, both backends. Mandates and their covered work are rows of
migration 12; a refusal under a mandate writes nothing (no work, no hold, no outbox row)."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from aex.core import Money, Plan
from aex.core.certs import LocalSigner, public_key_to_jwk
from aex.core.ledger import Deposit
from aex.core.mandates import sign_mandate
from serve.certauth.schemas import PublicJwk
from serve.credentials.mandates import Mandates
from serve.credentials.schemas import MandateCreate, MandateKeyCreate
from serve.gateway.problems import ProblemError
from serve.identity.security import Principal, PrincipalKind
from serve.market.usecases import Market
from serve.settlement.wallets import wallet_id
from tests.conftest import Stores
from tests.serve.market_helpers import work_body

TENANT = "ten_00000000000000cc"
CONSUMER = Principal(PrincipalKind.TENANT, TENANT, Plan.ENTERPRISE, key_id="key_agent")
STRANGER = Principal(PrincipalKind.TENANT, "ten_00000000000000dd", Plan.ENTERPRISE)


def _events(store: Stores, since: int) -> list[str]:
    return [str(row[2]) for row in store.market.outbox_after(since)]


def test_a_mandate_holds_work_to_its_total_and_a_refusal_writes_nothing(store: Stores) -> None:
    store.ledger.apply(Deposit("dep-m", wallet_id(TENANT, "USD"), Money(100_000, "USD")))
    market = Market(store.market)
    mandates = Mandates(market)
    key = LocalSigner.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    jwk = PublicJwk(**public_key_to_jwk(key.public_key))
    mandates.register_key(CONSUMER, MandateKeyCreate(public_key_jwk=jwk))
    now_s = int(time.time())
    token = sign_mandate(
        mandate_id="mdt_store",
        tenant_id=TENANT,
        currency="USD",
        amount_per_work="200",
        amount_total="300",
        categories=["TECHNOLOGY"],
        issued_at_s=now_s,
        expires_at_s=now_s + 600,
        signer=key,
        agent_key_id="key_agent",
    )
    start = store.market.outbox_head()
    created = mandates.create(CONSUMER, MandateCreate(mandate=token))
    assert created.state == "ACTIVE"
    assert _events(store, start) == ["mandate.created"]
    market.submit_work(CONSUMER, {**work_body(), "mandate_id": "mdt_store"})  # takes 200.00
    assert mandates.mandate(CONSUMER, "mdt_store").spent == "200.00"
    before = (store.market.outbox_head(), store.ledger.wallet(wallet_id(TENANT, "USD")))
    with pytest.raises(ProblemError) as refused:
        market.submit_work(CONSUMER, {**work_body(), "mandate_id": "mdt_store"})
    assert refused.value.status == 403
    assert refused.value.slug == "mandate-total-exceeded"
    after = (store.market.outbox_head(), store.ledger.wallet(wallet_id(TENANT, "USD")))
    assert after == before
    # Another key of the same tenant is not the agent the mandate names.
    other_key = Principal(PrincipalKind.TENANT, TENANT, Plan.ENTERPRISE, key_id="key_other")
    small = {**work_body(budget={"min": 1, "max": 1, "currency": "USD"}), "mandate_id": "mdt_store"}
    with pytest.raises(ProblemError) as mismatch:
        market.submit_work(other_key, small)
    assert mismatch.value.slug == "mandate-agent-mismatch"
    # Another tenant: 404 for reading, revoking and using.
    for attempt in (
        lambda: mandates.mandate(STRANGER, "mdt_store"),
        lambda: mandates.revoke(STRANGER, "mdt_store"),
        lambda: market.submit_work(STRANGER, small),
    ):
        with pytest.raises(ProblemError) as hidden:
            attempt()
        assert hidden.value.status == 404
    head = store.market.outbox_head()
    assert mandates.revoke(CONSUMER, "mdt_store").state == "REVOKED"
    assert mandates.revoke(CONSUMER, "mdt_store").state == "REVOKED"  # once
    assert _events(store, head) == ["mandate.revoked"]
