"""The SQLite schema: numbered migrations, applied once each, in order, on start."""

from __future__ import annotations

from serve.stores.market_schema import (
    AGENT_CARDS_SCHEMA,
    BILLING_SCHEMA,
    CA_SCHEMA,
    CREDIT_VOUCHERS_SCHEMA,
    MANDATES_SCHEMA,
    MARKET_SCHEMA,
    SUBSCRIPTION_INDEX_SCHEMA,
)

# Issue 11 (secrets at rest): a provider's webhook signing secret, sealed (serve/secret_box.py;
# providers made before it have none and get no webhooks until their owner makes one); and the
# Idempotency-Key records of the old owners (tenant, client address), whose bodies held API
# keys in plaintext and which no caller can replay any more (owners are now credentials).
SECRETS_AT_REST = """
ALTER TABLE providers ADD COLUMN webhook_secret_sealed TEXT;
DELETE FROM idempotency WHERE scope LIKE 'tenant:%' OR scope LIKE 'ip:%'
"""

# Issue 16 (tracing): the W3C trace context (`traceparent`) of the request whose transaction
# wrote each outbox event, so the relay to NATS and the webhook calls continue its trace; NULL
# when no tracer records (no exporter configured) and for rows written before.
OUTBOX_TRACE_CONTEXT = "ALTER TABLE outbox ADD COLUMN traceparent TEXT"
# GET /v1/bids: a provider's own bids, newest first, by keyset cursor.
BIDS_BY_PROVIDER = "CREATE INDEX bids_by_provider ON bids (provider_id, submitted_at_ms, bid_id)"
# GET /v1/keys, /v1/admin/tenants, /v1/providers, /v1/subscriptions: newest first, by keyset
# cursor (serve/stores/pages.py `keyset_page`); the same text on both backends.
IDENTITY_LISTS_BY_CREATED = """
CREATE INDEX tenants_by_created ON tenants (created_at_ms, tenant_id);
CREATE INDEX api_keys_by_tenant_created ON api_keys (tenant_id, created_at_ms, key_id);
CREATE INDEX providers_by_tenant_created ON providers (tenant_id, created_at_ms, provider_id);
CREATE INDEX subscriptions_by_tenant_created
    ON subscriptions (tenant_id, created_at_ms, subscription_id)
"""

# Numbered migrations; each runs once, in order, recorded in schema_version.
# Issue 15, certificate types with meaning (docs/certificates.md): which certificate claims
# count toward the certification bonus and score (`counts`, 0 for rows written before: only
# a renewal or a new issue, under the rule, makes one count), each record's Bitstring Status
# List index, the IDENTITY endpoint challenges, and RESELLER delegations (the delegators' keys,
# the delegations, which certificate each authorises). One text for both backends.
CERT_TRUST_SCHEMA = """
ALTER TABLE certificate_owners ADD COLUMN counts INTEGER NOT NULL DEFAULT 0;
CREATE TABLE ca_status_entries (
    record_id TEXT PRIMARY KEY,
    status_index BIGINT NOT NULL UNIQUE,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE cert_challenges (
    token TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL,
    key_thumbprint TEXT NOT NULL,
    url TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    error TEXT NOT NULL
);
CREATE INDEX cert_challenges_by_provider ON cert_challenges (provider_id);
CREATE TABLE delegation_keys (
    kid TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL,
    jwk TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE delegations (
    delegation_id TEXT PRIMARY KEY,
    delegator_provider_id TEXT NOT NULL,
    reseller_provider_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    issued_at_s BIGINT NOT NULL,
    expires_at_s BIGINT NOT NULL,
    token TEXT NOT NULL,
    revoked_at_ms BIGINT
);
CREATE INDEX delegations_by_reseller ON delegations (reseller_provider_id);
CREATE TABLE reseller_certificates (
    certificate_id TEXT PRIMARY KEY,
    delegation_id TEXT NOT NULL
);
CREATE INDEX reseller_certificates_by_delegation ON reseller_certificates (delegation_id)
"""

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE credentials_epoch (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            epoch INTEGER NOT NULL
        );
        INSERT INTO credentials_epoch (id, epoch) VALUES (1, 0);
        CREATE TABLE tenants (
            tenant_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            type TEXT NOT NULL CHECK (type IN ('CONSUMER', 'PROVIDER', 'BOTH')),
            plan TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED')),
            created_at_ms INTEGER NOT NULL
        );
        CREATE TABLE api_keys (
            key_id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
            kind TEXT NOT NULL CHECK (kind IN ('TENANT', 'PROVIDER')),
            provider_id TEXT,
            digest TEXT NOT NULL UNIQUE CHECK (length(digest) = 64),
            prefix TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL,
            revoked_at_ms INTEGER
        );
        CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);
        CREATE TABLE providers (
            provider_id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
            name TEXT NOT NULL,
            type TEXT NOT NULL,
            capabilities TEXT NOT NULL,
            category TEXT NOT NULL,
            endpoint TEXT,
            secret_digest TEXT NOT NULL CHECK (length(secret_digest) = 64),
            created_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL
        );
        CREATE INDEX providers_by_tenant ON providers (tenant_id);
        CREATE TABLE subscriptions (
            subscription_id TEXT PRIMARY KEY,
            provider_id TEXT NOT NULL REFERENCES providers (provider_id),
            tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
            categories TEXT NOT NULL,
            capabilities TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL
        );
        CREATE INDEX subscriptions_by_tenant ON subscriptions (tenant_id);
        CREATE TABLE idempotency (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            request_digest TEXT NOT NULL,
            status INTEGER,
            body BLOB,
            content_type TEXT,
            created_at_ms INTEGER NOT NULL,
            PRIMARY KEY (scope, key)
        );
        """,
    ),
    (
        2,
        """
CREATE TABLE wallets (
    wallet_id TEXT PRIMARY KEY,
    currency TEXT NOT NULL,
    available_minor INTEGER NOT NULL CHECK (available_minor >= 0),
    held_minor INTEGER NOT NULL CHECK (held_minor >= 0)
);
CREATE TABLE holds (
    hold_id TEXT PRIMARY KEY,
    wallet_id TEXT NOT NULL REFERENCES wallets (wallet_id),
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    state TEXT NOT NULL,
    payee_wallet_id TEXT,
    fee_minor INTEGER NOT NULL CHECK (fee_minor >= 0)
);
CREATE TABLE journal_entries (
    entry_id INTEGER PRIMARY KEY,
    operation_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    fingerprint TEXT NOT NULL CHECK (length(fingerprint) = 64),
    record TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE postings (
    posting_id INTEGER PRIMARY KEY,
    entry_id INTEGER NOT NULL REFERENCES journal_entries (entry_id),
    account_id TEXT NOT NULL,
    bucket TEXT NOT NULL CHECK (bucket IN ('available', 'held')),
    amount_minor INTEGER NOT NULL CHECK (amount_minor != 0),
    currency TEXT NOT NULL
);
CREATE INDEX postings_by_entry ON postings (entry_id);
CREATE INDEX postings_by_account ON postings (account_id, entry_id)
""",
    ),
    # The market (work, bids, evaluations, contracts, outcomes, the outbox, webhook deliveries):
    # `IF NOT EXISTS`, because data directories made before it was numbered already hold it.
    (3, MARKET_SCHEMA),
    (4, CA_SCHEMA),
    (5, SECRETS_AT_REST),
    (6, AGENT_CARDS_SCHEMA),
    (7, SUBSCRIPTION_INDEX_SCHEMA),
    # Settlement holds the escrow through the dispute window (docs/ledger.md "Settlement and
    # disputes"): paid_out_at_ms is when it was captured. Contracts settled before this step
    # were captured at settlement, so they are marked paid out then. The partial index is the
    # payout sweeper's queue; the consumer index is the concurrent-tasks count.
    (
        8,
        """
        ALTER TABLE contracts ADD COLUMN paid_out_at_ms INTEGER;
        UPDATE contracts SET paid_out_at_ms = settled_at_ms WHERE settled_at_ms IS NOT NULL;
        CREATE INDEX contracts_payout_due ON contracts (settled_at_ms)
            WHERE state = 'SETTLED' AND paid_out_at_ms IS NULL;
        CREATE INDEX contracts_by_consumer ON contracts (consumer_tenant_id, state)
        """,
    ),
    # Dashboard sign-in sessions (serve/dashboard/sessions.py): a read-only session per row,
    # keyed by the SHA-256 digest of its cookie token (the token itself is never stored).
    (
        9,
        """
        CREATE TABLE dashboard_sessions (
            session_digest TEXT PRIMARY KEY CHECK (length(session_digest) = 64),
            kind TEXT NOT NULL,
            tenant_id TEXT,
            provider_id TEXT,
            key_id TEXT,
            plan TEXT NOT NULL,
            credentials_epoch INTEGER NOT NULL,
            created_at_ms INTEGER NOT NULL,
            expires_at_ms INTEGER NOT NULL
        );
        CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at_ms)
        """,
    ),
    # Billing (issue 15 item 4): plan terms, invoices, verification charges posted.
    (10, BILLING_SCHEMA),
    # Certificates with meaning (issue 15 item 1): claim assurance, ACME-style challenges,
    # status-list entries, delegations.
    (11, CERT_TRUST_SCHEMA),
    # AP2 mandates (issue 15 item 2): user keys, intent mandates, covered work, receipts.
    (12, MANDATES_SCHEMA),
    # The token bank (issue 15 item 3): credit buckets, vouchers (serve/tokenbank/vouchers.py).
    (13, CREDIT_VOUCHERS_SCHEMA),
    # Trace context through the outbox (issue 16 item 2).
    (14, OUTBOX_TRACE_CONTEXT),
    # A provider lists its own bids (issue 12 item 4).
    (15, BIDS_BY_PROVIDER),
    (16, IDENTITY_LISTS_BY_CREATED),
)
assert [number for number, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
