"""Store contract: every backend behaves the same (run once per backend by the `store` fixture)."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aex.core import (
    CredentialKind,
    Money,
    Plan,
    QuotaRejectReason,
    Rejected,
    check_agents_quota,
    credential_digest,
    format_credential,
)
from aex.core.ledger import Applied, Capture, Deposit, Hold, Release, Withdraw
from aex.core.reasons import LedgerRejectReason
from serve.stores.base import KeyRecord, ProviderRecord, StoredResponse, TenantRecord
from serve.stores.migrations import MIGRATIONS
from serve.stores.postgres_migrations import PG_MIGRATIONS
from tests.conftest import Stores


def tenant(tenant_id: str = "ten_0000000000000001") -> TenantRecord:
    return TenantRecord(tenant_id, "Acme", "BOTH", Plan.EXPLORER, "ACTIVE", 1)


def key(tenant_id: str, n: int, **extra: object) -> tuple[str, KeyRecord]:
    plain = format_credential(CredentialKind.TENANT_KEY, f"{n:064x}")
    record = KeyRecord(
        f"key_{n:016x}", tenant_id, "TENANT", credential_digest(plain), plain[:12], 1
    )
    return plain, KeyRecord(
        **{**{f: getattr(record, f) for f in record.__struct_fields__}, **extra}
    )


def provider(tenant_id: str, n: int) -> ProviderRecord:
    return ProviderRecord(f"prov_{n:016x}", tenant_id, "bot", "AI_AGENT", ("x",), "T", None, 1, 1)


def test_a_credential_is_found_by_its_digest_only(store: Stores) -> None:
    plain, record = key("ten_0000000000000001", 1)
    store.keys.create_tenant(tenant(), record)
    found = store.keys.find_credential(credential_digest(plain))
    assert found is not None
    assert found.tenant.tenant_id == "ten_0000000000000001"
    assert store.keys.find_credential(credential_digest(plain + "0")) is None


def test_revocation_and_suspension_move_the_credentials_epoch(store: Stores) -> None:
    _, record = key("ten_0000000000000001", 1)
    store.keys.create_tenant(tenant(), record)
    before = store.keys.credentials_epoch()
    revoked = store.keys.revoke_key("ten_0000000000000001", record.key_id, now_ms=5)
    assert revoked is not None
    assert revoked.revoked_at_ms == 5
    store.keys.set_tenant_status("ten_0000000000000001", "SUSPENDED")
    assert store.keys.credentials_epoch() >= before + 2


def test_a_refused_or_idle_credential_change_leaves_the_epoch_alone(store: Stores) -> None:
    # A revocation that revoked nothing must not drop every worker's key cache (issue 11).
    _, record = key("ten_0000000000000001", 1)
    store.keys.create_tenant(tenant(), record)
    epoch = store.keys.credentials_epoch()
    assert store.keys.revoke_key("ten_0000000000000001", "key_00000000000000ff", now_ms=5) is None
    assert store.keys.revoke_key("ten_0000000000000002", record.key_id, now_ms=5) is None
    _, new_key = key("ten_0000000000000001", 2)
    assert store.keys.rotate_key("ten_0000000000000001", "key_ff", new_key, now_ms=5) is None
    assert store.keys.set_tenant_status("ten_00000000000000ff", "SUSPENDED") is None
    assert store.keys.set_tenant_plan("ten_00000000000000ff", Plan.BUSINESS) is None
    store.keys.set_tenant_status("ten_0000000000000001", "ACTIVE")  # already ACTIVE
    store.keys.set_tenant_plan("ten_0000000000000001", Plan.EXPLORER)  # already EXPLORER
    assert store.keys.credentials_epoch() == epoch
    assert store.keys.revoke_key("ten_0000000000000001", record.key_id, now_ms=5) is not None
    assert store.keys.credentials_epoch() == epoch + 1
    store.keys.revoke_key("ten_0000000000000001", record.key_id, now_ms=6)  # already revoked
    store.keys.set_tenant_plan("ten_0000000000000001", Plan.BUSINESS)
    assert store.keys.credentials_epoch() == epoch + 2


def test_revoking_another_tenants_key_changes_nothing(store: Stores) -> None:
    _, record = key("ten_0000000000000001", 1)
    store.keys.create_tenant(tenant(), record)
    store.keys.create_tenant(tenant("ten_0000000000000002"), key("ten_0000000000000002", 2)[1])
    assert store.keys.revoke_key("ten_0000000000000002", record.key_id, now_ms=5) is None
    assert store.keys.list_keys("ten_0000000000000001")[0].revoked_at_ms is None


def test_concurrent_registrations_cannot_pass_max_agents(store: Stores) -> None:
    store.keys.create_tenant(tenant(), key("ten_0000000000000001", 1)[1])
    check = partial(check_agents_quota, Plan.EXPLORER)

    def register(n: int) -> Rejected[QuotaRejectReason] | None:
        _, provider_key = key("ten_0000000000000001", 100 + n)
        return store.keys.create_provider(
            provider("ten_0000000000000001", n), provider_key, "0" * 64, check_agents=check
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(register, range(8)))
    assert sum(r is None for r in results) == 1
    assert len(store.keys.list_providers("ten_0000000000000001")) == 1


def test_idempotency_claim_replay_mismatch_and_stale(store: Stores) -> None:
    claims = store.idempotency
    assert claims.claim("t", "k", "d1", now_ms=0, stale_after_ms=100).outcome == "CLAIMED"
    assert claims.claim("t", "k", "d1", now_ms=1, stale_after_ms=100).outcome == "IN_FLIGHT"
    assert claims.claim("t", "k", "d1", now_ms=500, stale_after_ms=100).outcome == "CLAIMED"
    claims.complete("t", "k", StoredResponse(201, b"{}", "application/json"), now_ms=501)
    replay = claims.claim("t", "k", "d1", now_ms=502, stale_after_ms=100)
    assert replay.outcome == "REPLAY"
    assert replay.response == StoredResponse(201, b"{}", "application/json")
    assert claims.claim("t", "k", "d2", now_ms=503, stale_after_ms=100).outcome == "MISMATCH"
    assert claims.claim("other", "k", "d2", now_ms=503, stale_after_ms=100).outcome == "CLAIMED"


def test_ledger_deposit_withdraw_replay_and_refusals(store: Stores) -> None:
    ledger = store.ledger
    usd = partial(Money, currency="USD")
    first = ledger.apply(Deposit("op1", "tenant:a:USD", usd(1000)))
    assert isinstance(first, Applied)
    replay = ledger.apply(Deposit("op1", "tenant:a:USD", usd(1000)))
    assert isinstance(replay, Applied)
    assert replay.replayed
    conflict = ledger.apply(Deposit("op1", "tenant:a:USD", usd(999)))
    assert isinstance(conflict, Rejected)
    assert conflict.reason is LedgerRejectReason.IDEMPOTENCY_CONFLICT
    short = ledger.apply(Withdraw("op2", "tenant:a:USD", usd(1001)))
    assert isinstance(short, Rejected)
    assert short.reason is LedgerRejectReason.INSUFFICIENT_FUNDS
    assert isinstance(ledger.apply(Withdraw("op3", "tenant:a:USD", usd(400))), Applied)
    wallet = ledger.wallet("tenant:a:USD")
    assert wallet is not None
    assert (wallet.available_minor, wallet.held_minor) == (600, 0)
    assert [row.available_change_minor for row in ledger.history("tenant:a:USD", limit=10)] == [
        -400,
        1000,
    ]
    assert ledger.totals_by_currency() == {"USD": 0}


def test_ledger_hold_capture_replays_and_settles_once(store: Stores) -> None:
    ledger = store.ledger
    usd = partial(Money, currency="USD")
    assert isinstance(ledger.apply(Deposit("fund", "tenant:a:USD", usd(1000))), Applied)
    hold = Hold("hold1", "h1", "tenant:a:USD", usd(400))
    capture = Capture("cap1", "h1", "tenant:b:USD", 1_500)
    assert isinstance(ledger.apply(hold), Applied)
    captured = ledger.apply(capture)
    assert isinstance(captured, Applied)
    assert not captured.replayed
    # Replays answer with the stored result, also a hold's after its capture named a payee.
    for operation in (capture, hold):
        replay = ledger.apply(operation)
        assert isinstance(replay, Applied)
        assert replay.replayed
    for second in (Capture("cap2", "h1", "tenant:c:USD", 1_500), Release("rel1", "h1")):
        refused = ledger.apply(second)
        assert isinstance(refused, Rejected)
        assert refused.reason is LedgerRejectReason.HOLD_TRANSITION_ILLEGAL
    unknown = ledger.apply(Capture("cap3", "h404", "tenant:b:USD", 1_500))
    assert isinstance(unknown, Rejected)
    assert unknown.reason is LedgerRejectReason.HOLD_UNKNOWN
    payer, payee = ledger.wallet("tenant:a:USD"), ledger.wallet("tenant:b:USD")
    assert payer is not None
    assert payee is not None
    assert (payer.available_minor, payer.held_minor) == (600, 0)
    assert (payee.available_minor, payee.held_minor) == (340, 0)
    assert ledger.wallet("tenant:c:USD") is None
    assert ledger.totals_by_currency() == {"USD": 0}
    assert ledger.wallet_mismatches() == []


_EXAMPLES = itertools.count()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 10_000)), max_size=20))
def test_ledger_sums_to_zero_and_wallets_match_postings(
    store: Stores, moves: list[tuple[bool, int]]
) -> None:
    # One store for all examples (hypothesis and function fixtures): fresh wallet per example.
    wallet_id = f"tenant:example-{next(_EXAMPLES)}:USD"
    for n, (is_deposit, amount) in enumerate(moves):
        operation = Deposit if is_deposit else Withdraw
        store.ledger.apply(operation(f"{wallet_id}:{n}", wallet_id, Money(amount, "USD")))
    assert set(store.ledger.totals_by_currency().values()) <= {0}
    assert store.ledger.wallet_mismatches() == []


@pytest.mark.parametrize("count", [1, 2])
def test_migrations_are_applied_once(store: Stores, count: int) -> None:
    keys = store.keys
    # the same numbered steps on both backends
    assert [n for n, _ in MIGRATIONS] == [n for n, _ in PG_MIGRATIONS]
    if hasattr(keys, "migrate"):
        for _ in range(count):
            assert keys.migrate() == MIGRATIONS[-1][0]


def test_a_providers_webhook_secret_is_stored_sealed_and_replaced_by_its_owner_only(
    store: Stores,
) -> None:
    owner = "ten_0000000000000001"
    store.keys.create_tenant(tenant(owner), key(owner, 1)[1])
    store.keys.create_tenant(tenant("ten_0000000000000002"), key("ten_0000000000000002", 2)[1])
    agent = provider(owner, 1)
    _, agent_key = key(owner, 3, kind="PROVIDER", provider_id=agent.provider_id)
    created = store.keys.create_provider(
        agent, agent_key, "d" * 64, check_agents=lambda _: None, webhook_secret_sealed="v1.first"
    )
    assert created is None

    def sealed() -> object:
        rows = store.market.read(
            "SELECT webhook_secret_sealed FROM providers WHERE provider_id = ?",
            (agent.provider_id,),
        )
        return rows[0][0]

    assert sealed() == "v1.first"
    assert not store.keys.set_webhook_secret("ten_0000000000000002", agent.provider_id, "v1.x")
    assert sealed() == "v1.first"
    assert store.keys.set_webhook_secret(owner, agent.provider_id, "v1.second")
    assert sealed() == "v1.second"
