"""The PostgreSQL schema: the same numbered migrations as serve/stores/migrations.py (SQLite),
in PostgreSQL's dialect, applied once each, in order, recorded in schema_version.

The database guards the ledger's invariants as the SQLite schema does: balances can never go
negative (CHECK), one journal entry per operation_id (UNIQUE; the entry doubles as the operation's
idempotency record, as on SQLite), no zero
postings; idempotency records are unique per (scope, key).
"""

from __future__ import annotations

from serve.stores.market_schema import (
    AGENT_CARDS_SCHEMA,
    CA_SCHEMA,
    MANDATES_SCHEMA,
    PG_BILLING_SCHEMA,
    PG_CREDIT_VOUCHERS_SCHEMA,
    PG_MARKET_SCHEMA,
    PG_SUBSCRIPTION_INDEX_SCHEMA,
)
from serve.stores.migrations import (
    BIDS_BY_PROVIDER,
    CERT_TRUST_SCHEMA,
    IDENTITY_LISTS_BY_CREATED,
    OUTBOX_TRACE_CONTEXT,
    SECRETS_AT_REST,
)

PG_MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE credentials_epoch (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            epoch BIGINT NOT NULL
        );
        INSERT INTO credentials_epoch (id, epoch) VALUES (1, 0);
        CREATE TABLE tenants (
            tenant_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            type TEXT NOT NULL CHECK (type IN ('CONSUMER', 'PROVIDER', 'BOTH')),
            plan TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED')),
            created_at_ms BIGINT NOT NULL
        );
        CREATE TABLE api_keys (
            key_id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
            kind TEXT NOT NULL CHECK (kind IN ('TENANT', 'PROVIDER')),
            provider_id TEXT,
            digest TEXT NOT NULL UNIQUE CHECK (length(digest) = 64),
            prefix TEXT NOT NULL,
            created_at_ms BIGINT NOT NULL,
            revoked_at_ms BIGINT
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
            created_at_ms BIGINT NOT NULL,
            updated_at_ms BIGINT NOT NULL
        );
        CREATE INDEX providers_by_tenant ON providers (tenant_id);
        CREATE TABLE subscriptions (
            subscription_id TEXT PRIMARY KEY,
            provider_id TEXT NOT NULL REFERENCES providers (provider_id),
            tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
            categories TEXT NOT NULL,
            capabilities TEXT NOT NULL,
            created_at_ms BIGINT NOT NULL
        );
        CREATE INDEX subscriptions_by_tenant ON subscriptions (tenant_id);
        CREATE TABLE idempotency (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            request_digest TEXT NOT NULL,
            status INTEGER,
            body BYTEA,
            content_type TEXT,
            created_at_ms BIGINT NOT NULL,
            PRIMARY KEY (scope, key)
        )
        """,
    ),
    (
        2,
        """
        CREATE TABLE wallets (
            wallet_id TEXT PRIMARY KEY,
            currency TEXT NOT NULL,
            available_minor BIGINT NOT NULL CHECK (available_minor >= 0),
            held_minor BIGINT NOT NULL CHECK (held_minor >= 0)
        );
        CREATE TABLE holds (
            hold_id TEXT PRIMARY KEY,
            wallet_id TEXT NOT NULL REFERENCES wallets (wallet_id),
            amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
            currency TEXT NOT NULL,
            state TEXT NOT NULL,
            payee_wallet_id TEXT,
            fee_minor BIGINT NOT NULL CHECK (fee_minor >= 0)
        );
        CREATE TABLE journal_entries (
            entry_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            operation_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            fingerprint TEXT NOT NULL CHECK (length(fingerprint) = 64),
            record TEXT NOT NULL,
            created_at_ms BIGINT NOT NULL
        );
        CREATE TABLE postings (
            posting_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            entry_id BIGINT NOT NULL REFERENCES journal_entries (entry_id),
            account_id TEXT NOT NULL,
            bucket TEXT NOT NULL CHECK (bucket IN ('available', 'held')),
            amount_minor BIGINT NOT NULL CHECK (amount_minor != 0),
            currency TEXT NOT NULL
        );
        CREATE INDEX postings_by_entry ON postings (entry_id);
        CREATE INDEX postings_by_account ON postings (account_id, entry_id)
        """,
    ),
    (3, PG_MARKET_SCHEMA),
    (4, CA_SCHEMA),
    (5, SECRETS_AT_REST),
    (6, AGENT_CARDS_SCHEMA),
    (7, PG_SUBSCRIPTION_INDEX_SCHEMA),
    # Settlement holds the escrow through the dispute window (docs/ledger.md "Settlement and
    # disputes"): paid_out_at_ms is when it was captured. Contracts settled before this step
    # were captured at settlement, so they are marked paid out then. The partial index is the
    # payout sweeper's queue; the consumer index is the concurrent-tasks count.
    (
        8,
        """
        ALTER TABLE contracts ADD COLUMN paid_out_at_ms BIGINT;
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
            credentials_epoch BIGINT NOT NULL,
            created_at_ms BIGINT NOT NULL,
            expires_at_ms BIGINT NOT NULL
        );
        CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at_ms)
        """,
    ),
    # Billing (issue 15 item 4): plan terms, invoices, verification charges posted.
    (10, PG_BILLING_SCHEMA),
    # Certificates with meaning (issue 15 item 1): claim assurance, ACME-style challenges,
    # status-list entries, delegations.
    (11, CERT_TRUST_SCHEMA),
    # AP2 mandates (issue 15 item 2): user keys, intent mandates, covered work, receipts.
    (12, MANDATES_SCHEMA),
    # The token bank (issue 15 item 3): credit buckets, vouchers (serve/tokenbank/vouchers.py).
    (13, PG_CREDIT_VOUCHERS_SCHEMA),
    # Trace context through the outbox (issue 16 item 2).
    (14, OUTBOX_TRACE_CONTEXT),
    (15, BIDS_BY_PROVIDER),
    (16, IDENTITY_LISTS_BY_CREATED),
)
assert [number for number, _ in PG_MIGRATIONS] == list(range(1, len(PG_MIGRATIONS) + 1))
