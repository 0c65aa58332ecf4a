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
from serve.stores.base import (
    IdempotencyClaim,
    KeyRecord,
    ProviderRecord,
    StoredResponse,
    SubscriptionRecord,
    TenantRecord,
)
from serve.stores.migrations import MIGRATIONS
from serve.stores.postgres_migrations import PG_MIGRATIONS
from tests.conftest import Stores

DAY_MS = 86_400_000


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
    listed = store.keys.page_providers("ten_0000000000000001", None, limit=100, starting_after=None)
    assert listed is not None
    assert len(listed.records) == 1


def test_idempotency_claim_replay_mismatch_and_stale(store: Stores) -> None:
    claims = store.idempotency

    def claim(scope: str, digest: str, now: int) -> IdempotencyClaim:
        return claims.claim(scope, "k", digest, now_ms=now, stale_after_ms=100, ttl_ms=DAY_MS)

    assert claim("t", "d1", 0).outcome == "CLAIMED"
    assert claim("t", "d1", 1).outcome == "IN_FLIGHT"
    assert claim("t", "d1", 500).outcome == "CLAIMED"
    claims.complete("t", "k", StoredResponse(201, b"{}", "application/json"), now_ms=501)
    replay = claim("t", "d1", 502)
    assert replay.outcome == "REPLAY"
    assert replay.response == StoredResponse(201, b"{}", "application/json")
    assert claim("t", "d2", 503).outcome == "MISMATCH"
    assert claim("other", "d2", 503).outcome == "CLAIMED"


def test_idempotency_record_expires_after_its_ttl_and_is_pruned(store: Stores) -> None:
    claims = store.idempotency
    assert claims.claim("t", "k", "d1", now_ms=0, stale_after_ms=100, ttl_ms=DAY_MS).outcome == (
        "CLAIMED"
    )
    claims.complete("t", "k", StoredResponse(201, b"{}", "application/json"), now_ms=1)
    claims.claim("t", "young", "d1", now_ms=DAY_MS, stale_after_ms=10**9, ttl_ms=DAY_MS)
    within = claims.claim("t", "k", "d2", now_ms=DAY_MS, stale_after_ms=100, ttl_ms=DAY_MS)
    assert within.outcome == "MISMATCH"
    # Past the TTL the key starts afresh, even with another body.
    after = claims.claim("t", "k", "d2", now_ms=DAY_MS + 1, stale_after_ms=100, ttl_ms=DAY_MS)
    assert after.outcome == "CLAIMED"
    claims.complete("t", "k", StoredResponse(200, b"[]", "application/json"), now_ms=DAY_MS + 2)
    # Pruning removes only records older than the cut-off, at most `limit` of them.
    claims.claim("t", "old1", "d", now_ms=5, stale_after_ms=100, ttl_ms=DAY_MS)
    claims.claim("t", "old2", "d", now_ms=6, stale_after_ms=100, ttl_ms=DAY_MS)
    assert claims.prune_idempotency(before_ms=DAY_MS, limit=1) == 1
    assert claims.prune_idempotency(before_ms=DAY_MS, limit=10) == 1
    assert claims.prune_idempotency(before_ms=DAY_MS, limit=10) == 0
    replay = claims.claim("t", "k", "d2", now_ms=DAY_MS + 3, stale_after_ms=100, ttl_ms=DAY_MS)
    assert replay.outcome == "REPLAY"
    young = claims.claim("t", "young", "d1", now_ms=DAY_MS + 3, stale_after_ms=10**9, ttl_ms=DAY_MS)
    assert young.outcome == "IN_FLIGHT"


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


def test_lists_page_newest_first_by_cursor_within_their_owner_only(store: Stores) -> None:
    keys = store.keys
    owner, other = "ten_0000000000000001", "ten_0000000000000002"
    keys.create_tenant(tenant(owner), key(owner, 1)[1])
    keys.create_tenant(tenant(other), key(other, 2)[1])
    for n in (3, 4, 5):  # created at the same ms as the first: the id breaks the tie
        keys.add_key(key(owner, n)[1])
    ids = [f"key_{n:016x}" for n in (5, 4, 3, 1)]
    first = keys.page_keys(owner, limit=3, starting_after=None)
    assert first is not None
    assert ([k.key_id for k in first.records], first.has_more) == (ids[:3], True)
    rest = keys.page_keys(owner, limit=3, starting_after=ids[2])
    assert rest is not None
    assert ([k.key_id for k in rest.records], rest.has_more) == (ids[3:], False)
    # Another tenant's key and an id that names nothing are refused alike: None.
    assert keys.page_keys(other, limit=3, starting_after=ids[0]) is None
    assert keys.page_keys(owner, limit=3, starting_after="key_ffffffffffffffff") is None
    tenants = keys.page_tenants(limit=1, starting_after=None)
    assert tenants is not None
    assert ([t.tenant_id for t in tenants.records], tenants.has_more) == ([other], True)
    after = keys.page_tenants(limit=5, starting_after=other)
    assert after is not None
    assert [t.tenant_id for t in after.records] == [owner]


def test_providers_and_subscriptions_page_by_owner_and_by_provider(store: Stores) -> None:
    keys = store.keys
    owner = "ten_0000000000000001"
    keys.create_tenant(tenant(owner), key(owner, 1)[1])
    for n in (1, 2):
        created = keys.create_provider(
            provider(owner, n),
            key(owner, 10 + n, kind="PROVIDER", provider_id=f"prov_{n:016x}")[1],
            "0" * 64,
            check_agents=lambda count: None,
        )
        assert created is None
    for n, provider_id in ((1, 1), (2, 2), (3, 1)):
        subscription = SubscriptionRecord(
            f"sub_{n:016x}", f"prov_{provider_id:016x}", owner, ("T",), (), n
        )
        assert keys.create_subscription(subscription, check_subscriptions=lambda c: None) is None
    providers = keys.page_providers(owner, None, limit=10, starting_after=None)
    assert providers is not None
    assert [p.provider_id for p in providers.records] == [f"prov_{n:016x}" for n in (2, 1)]
    own = keys.page_providers(owner, f"prov_{1:016x}", limit=10, starting_after=None)
    assert own is not None
    assert [p.provider_id for p in own.records] == [f"prov_{1:016x}"]
    # A provider cannot page from its sibling's id.
    assert (
        keys.page_providers(owner, f"prov_{1:016x}", limit=1, starting_after=f"prov_{2:016x}")
        is None
    )
    every = keys.page_subscriptions(owner, None, limit=2, starting_after=None)
    assert every is not None
    assert ([s.subscription_id for s in every.records], every.has_more) == (
        [f"sub_{3:016x}", f"sub_{2:016x}"],
        True,
    )
    first_only = keys.page_subscriptions(
        owner, f"prov_{1:016x}", limit=1, starting_after=f"sub_{3:016x}"
    )
    assert first_only is not None
    assert ([s.subscription_id for s in first_only.records], first_only.has_more) == (
        [f"sub_{1:016x}"],
        False,
    )
    assert (
        keys.page_subscriptions(owner, f"prov_{1:016x}", limit=1, starting_after=f"sub_{2:016x}")
        is None
    )
