"""The market's tables: work, bids, evaluations, contracts, outcomes, the outbox, webhook
deliveries; for SQLite (migration 3 of serve/stores/migrations.py) and PostgreSQL (migration 3
of serve/stores/postgres_migrations.py). The two are the same tables, columns and keys in each
dialect (PostgreSQL: BIGINT for money and milliseconds, DOUBLE PRECISION for a confidence,
BIGSERIAL for the outbox sequence); tests/serve/stores/test_market_schema.py holds them to it.
Money is integer minor units; JSON columns hold the core's `to_json` shapes as text.
"""

from __future__ import annotations

MARKET_SCHEMA = """
CREATE TABLE IF NOT EXISTS work (
    work_id TEXT PRIMARY KEY,
    consumer_tenant_id TEXT NOT NULL,
    spec TEXT NOT NULL,
    category TEXT NOT NULL,
    capability TEXT,
    currency TEXT NOT NULL,
    budget_max_minor INTEGER NOT NULL CHECK (budget_max_minor > 0),
    state TEXT NOT NULL,
    opened_at_ms INTEGER NOT NULL,
    closes_at_ms INTEGER NOT NULL,
    hold_id TEXT NOT NULL,
    contract_id TEXT,
    closed_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS work_by_consumer ON work (consumer_tenant_id, opened_at_ms);
CREATE INDEX IF NOT EXISTS work_open_by_close ON work (closes_at_ms) WHERE state = 'OPEN';
CREATE TABLE IF NOT EXISTS bids (
    bid_id TEXT PRIMARY KEY,
    work_id TEXT NOT NULL REFERENCES work (work_id),
    provider_id TEXT NOT NULL,
    provider_tenant_id TEXT NOT NULL,
    price_minor INTEGER NOT NULL CHECK (price_minor > 0),
    confidence REAL NOT NULL,
    estimated_duration_ms INTEGER NOT NULL,
    max_turnaround_ms INTEGER NOT NULL,
    has_sample INTEGER NOT NULL,
    body TEXT NOT NULL,
    submitted_at_ms INTEGER NOT NULL,
    UNIQUE (work_id, provider_id)
);
CREATE TABLE IF NOT EXISTS evaluations (
    work_id TEXT PRIMARY KEY REFERENCES work (work_id),
    body TEXT NOT NULL,
    evaluated_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS contracts (
    contract_id TEXT PRIMARY KEY,
    work_id TEXT NOT NULL UNIQUE REFERENCES work (work_id),
    bid_id TEXT NOT NULL REFERENCES bids (bid_id),
    consumer_tenant_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    provider_tenant_id TEXT NOT NULL,
    price_minor INTEGER NOT NULL CHECK (price_minor > 0),
    currency TEXT NOT NULL,
    state TEXT NOT NULL,
    hold_id TEXT NOT NULL,
    promised_turnaround_ms INTEGER NOT NULL,
    awarded_at_ms INTEGER NOT NULL,
    progress TEXT,
    results TEXT,
    metrics TEXT,
    criteria TEXT,
    completed_at_ms INTEGER,
    settled_at_ms INTEGER,
    fee_minor INTEGER,
    dispute_raised_at_ms INTEGER,
    dispute_reason TEXT,
    resolved_at_ms INTEGER,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS contracts_by_provider ON contracts (provider_id);
CREATE TABLE IF NOT EXISTS outcomes (
    contract_id TEXT PRIMARY KEY REFERENCES contracts (contract_id),
    provider_id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    value_minor INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_by_provider ON outcomes (provider_id);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    occurred_at_ms INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_relay (
    name TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS verification_calls (
    tenant_id TEXT PRIMARY KEY,
    calls INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS certificate_owners (
    certificate_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    category TEXT NOT NULL,
    capability TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (certificate_id, category, capability)
);
CREATE INDEX IF NOT EXISTS certificate_owners_by_provider ON certificate_owners (provider_id);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    event_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    event TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    status TEXT NOT NULL,
    last_status_code INTEGER,
    last_error TEXT,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (event_id, provider_id)
)
"""

PG_MARKET_SCHEMA = """
CREATE TABLE work (
    work_id TEXT PRIMARY KEY,
    consumer_tenant_id TEXT NOT NULL,
    spec TEXT NOT NULL,
    category TEXT NOT NULL,
    capability TEXT,
    currency TEXT NOT NULL,
    budget_max_minor BIGINT NOT NULL CHECK (budget_max_minor > 0),
    state TEXT NOT NULL,
    opened_at_ms BIGINT NOT NULL,
    closes_at_ms BIGINT NOT NULL,
    hold_id TEXT NOT NULL,
    contract_id TEXT,
    closed_at_ms BIGINT
);
CREATE INDEX work_by_consumer ON work (consumer_tenant_id, opened_at_ms);
CREATE INDEX work_open_by_close ON work (closes_at_ms) WHERE state = 'OPEN';
CREATE TABLE bids (
    bid_id TEXT PRIMARY KEY,
    work_id TEXT NOT NULL REFERENCES work (work_id),
    provider_id TEXT NOT NULL,
    provider_tenant_id TEXT NOT NULL,
    price_minor BIGINT NOT NULL CHECK (price_minor > 0),
    confidence DOUBLE PRECISION NOT NULL,
    estimated_duration_ms BIGINT NOT NULL,
    max_turnaround_ms BIGINT NOT NULL,
    has_sample INTEGER NOT NULL,
    body TEXT NOT NULL,
    submitted_at_ms BIGINT NOT NULL,
    UNIQUE (work_id, provider_id)
);
CREATE TABLE evaluations (
    work_id TEXT PRIMARY KEY REFERENCES work (work_id),
    body TEXT NOT NULL,
    evaluated_at_ms BIGINT NOT NULL
);
CREATE TABLE contracts (
    contract_id TEXT PRIMARY KEY,
    work_id TEXT NOT NULL UNIQUE REFERENCES work (work_id),
    bid_id TEXT NOT NULL REFERENCES bids (bid_id),
    consumer_tenant_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    provider_tenant_id TEXT NOT NULL,
    price_minor BIGINT NOT NULL CHECK (price_minor > 0),
    currency TEXT NOT NULL,
    state TEXT NOT NULL,
    hold_id TEXT NOT NULL,
    promised_turnaround_ms BIGINT NOT NULL,
    awarded_at_ms BIGINT NOT NULL,
    progress TEXT,
    results TEXT,
    metrics TEXT,
    criteria TEXT,
    completed_at_ms BIGINT,
    settled_at_ms BIGINT,
    fee_minor BIGINT,
    dispute_raised_at_ms BIGINT,
    dispute_reason TEXT,
    resolved_at_ms BIGINT,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX contracts_by_provider ON contracts (provider_id);
CREATE TABLE outcomes (
    contract_id TEXT PRIMARY KEY REFERENCES contracts (contract_id),
    provider_id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    value_minor BIGINT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX outcomes_by_provider ON outcomes (provider_id);
CREATE TABLE outbox (
    seq BIGSERIAL PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    occurred_at_ms BIGINT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE outbox_relay (
    name TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
CREATE TABLE verification_calls (
    tenant_id TEXT PRIMARY KEY,
    calls BIGINT NOT NULL
);
CREATE TABLE certificate_owners (
    certificate_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    category TEXT NOT NULL,
    capability TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (certificate_id, category, capability)
);
CREATE INDEX certificate_owners_by_provider ON certificate_owners (provider_id);
CREATE TABLE webhook_deliveries (
    event_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    event TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    status TEXT NOT NULL,
    last_status_code INTEGER,
    last_error TEXT,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (event_id, provider_id)
)
"""

# The certificate authority's records and CRL (aex/ca/store.py's CertificateStore protocol, as
# JSON text): in the exchange's database, so that every process and host sees one CA state.
CA_SCHEMA = """
CREATE TABLE ca_records (
    record_id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE ca_crl (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL,
    document TEXT NOT NULL
)
"""

# A2A agent cards (serve/registry/agentcards.py), migration 6 on both backends: one card per
# provider (the document as registered) and its search terms (skill ids and tags, case-folded),
# keyed (kind, term, provider_id) so that a search by term is an index range, not a scan.
AGENT_CARDS_SCHEMA = """
CREATE TABLE agent_cards (
    provider_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    version TEXT NOT NULL,
    document TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE TABLE agent_card_terms (
    kind TEXT NOT NULL CHECK (kind IN ('skill', 'tag')),
    term TEXT NOT NULL,
    provider_id TEXT NOT NULL REFERENCES agent_cards (provider_id),
    PRIMARY KEY (kind, term, provider_id)
);
CREATE INDEX agent_card_terms_by_provider ON agent_card_terms (provider_id)
"""

# Migration 7: subscription matching through an index, category -> subscriptions (issue 11: a
# scan of every subscription inside each work's write transaction made POST /v1/work slow in
# proportion to the subscriptions of the whole exchange). One row per category pattern of a
# subscription: a literal ("TECHNOLOGY", is_prefix 0) or the text before a trailing "*"
# ("code." for "code.*", "" for "*"; is_prefix 1). A work of category C matches the rows
# (0, C) and (1, p) for every prefix p of C (at most category_chars_max + 1 of them), all
# primary-key lookups. Existing subscriptions are indexed by the migration itself.
_SUBSCRIPTION_INDEX_TABLE = """
CREATE TABLE IF NOT EXISTS subscription_categories (
    is_prefix INTEGER NOT NULL CHECK (is_prefix IN (0, 1)),
    pattern TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    PRIMARY KEY (is_prefix, pattern, subscription_id)
);
CREATE INDEX IF NOT EXISTS subscription_categories_by_subscription
    ON subscription_categories (subscription_id);
CREATE INDEX IF NOT EXISTS subscriptions_by_provider ON subscriptions (provider_id);
"""
_PATTERN_COLUMNS = """
    CASE WHEN substr(j.value, length(j.value), 1) = '*' THEN 1 ELSE 0 END,
    CASE WHEN substr(j.value, length(j.value), 1) = '*'
        THEN substr(j.value, 1, length(j.value) - 1) ELSE j.value END,
    s.subscription_id, s.provider_id
"""
SUBSCRIPTION_INDEX_SCHEMA = (
    _SUBSCRIPTION_INDEX_TABLE
    + "INSERT OR IGNORE INTO subscription_categories SELECT"
    + _PATTERN_COLUMNS
    + "FROM subscriptions s, json_each(s.categories) j"
)
PG_SUBSCRIPTION_INDEX_SCHEMA = (
    _SUBSCRIPTION_INDEX_TABLE
    + "INSERT INTO subscription_categories SELECT"
    + _PATTERN_COLUMNS
    + "FROM subscriptions s, json_array_elements_text(s.categories::json) AS j(value)"
    + " ON CONFLICT DO NOTHING"
)

# Billing (issue 15 item 4; docs/payments.md "Billing"). Numbered 13 on this branch (the lead
# renumbers at merge). Verification calls made before it were never charged: they are waived
# (cents_posted starts at what they would have posted). One subscription row per tenant (the
# paid term), and the invoices (one per plan change, one per month of verification calls).
BILLING_SCHEMA = """
ALTER TABLE verification_calls ADD COLUMN cents_posted INTEGER NOT NULL DEFAULT 0;
UPDATE verification_calls SET cents_posted = calls / 10;
CREATE TABLE plan_subscriptions (
    tenant_id TEXT PRIMARY KEY,
    plan TEXT NOT NULL,
    agents INTEGER NOT NULL CHECK (agents >= 1),
    term_price_minor INTEGER NOT NULL CHECK (term_price_minor >= 0),
    starts_at_ms INTEGER NOT NULL,
    ends_at_ms INTEGER NOT NULL
);
CREATE TABLE invoices (
    invoice_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('PLAN', 'VERIFICATION')),
    period TEXT NOT NULL,
    description TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX invoices_by_tenant ON invoices (tenant_id, created_at_ms)
"""

PG_BILLING_SCHEMA = """
ALTER TABLE verification_calls ADD COLUMN cents_posted BIGINT NOT NULL DEFAULT 0;
UPDATE verification_calls SET cents_posted = calls / 10;
CREATE TABLE plan_subscriptions (
    tenant_id TEXT PRIMARY KEY,
    plan TEXT NOT NULL,
    agents BIGINT NOT NULL CHECK (agents >= 1),
    term_price_minor BIGINT NOT NULL CHECK (term_price_minor >= 0),
    starts_at_ms BIGINT NOT NULL,
    ends_at_ms BIGINT NOT NULL
);
CREATE TABLE invoices (
    invoice_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('PLAN', 'VERIFICATION')),
    period TEXT NOT NULL,
    description TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX invoices_by_tenant ON invoices (tenant_id, created_at_ms)
"""


# AP2 mandates (issue 15 item 2, docs/payments.md "AP2 mandates"): the user keys a tenant signs
# intent mandates with, the mandates as verified (their limits in minor units, the signed
# document kept as evidence), which work each mandate covers (what it has spent is read from
# that work and its contract), and the signed receipts of contracts (checkout at award,
# payment at settlement; one of each per contract). One text for both backends.
MANDATES_SCHEMA = """
CREATE TABLE mandate_keys (
    kid TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    jwk TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX mandate_keys_by_tenant ON mandate_keys (tenant_id);
CREATE TABLE mandates (
    mandate_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    kid TEXT NOT NULL,
    agent_key_id TEXT,
    currency TEXT NOT NULL,
    amount_per_work_minor BIGINT NOT NULL CHECK (amount_per_work_minor > 0),
    amount_total_minor BIGINT NOT NULL CHECK (amount_total_minor >= amount_per_work_minor),
    categories TEXT NOT NULL,
    description TEXT NOT NULL,
    issued_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    token TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);
CREATE INDEX mandates_by_tenant ON mandates (tenant_id, created_at_ms);
CREATE TABLE mandate_work (
    work_id TEXT PRIMARY KEY,
    mandate_id TEXT NOT NULL REFERENCES mandates (mandate_id)
);
CREATE INDEX mandate_work_by_mandate ON mandate_work (mandate_id);
CREATE TABLE receipts (
    receipt_id TEXT PRIMARY KEY,
    contract_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    mandate_id TEXT NOT NULL,
    token TEXT NOT NULL,
    issued_at_ms BIGINT NOT NULL,
    UNIQUE (contract_id, kind)
);
ALTER TABLE contracts ADD COLUMN dispute_receipt_id TEXT
"""

# Issue 15 item 3, the token bank (docs/payments.md "Token bank"): each wallet's credit bucket
# and its expiry, each hold's credit part, the `credit` posting bucket, and the vouchers (a
# code's SHA-256 digest, never the code) with one row per tenant that redeemed each. The
# partial index is the expiry sweep's queue.
CREDIT_VOUCHERS_SCHEMA = """
ALTER TABLE wallets ADD COLUMN credit_minor INTEGER NOT NULL DEFAULT 0 CHECK (credit_minor >= 0);
ALTER TABLE wallets ADD COLUMN credit_expires_at_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE holds ADD COLUMN credit_minor INTEGER NOT NULL DEFAULT 0 CHECK (credit_minor >= 0);
CREATE TABLE postings_v12 (
    posting_id INTEGER PRIMARY KEY,
    entry_id INTEGER NOT NULL REFERENCES journal_entries (entry_id),
    account_id TEXT NOT NULL,
    bucket TEXT NOT NULL CHECK (bucket IN ('available', 'held', 'credit')),
    amount_minor INTEGER NOT NULL CHECK (amount_minor != 0),
    currency TEXT NOT NULL
);
INSERT INTO postings_v12 SELECT posting_id, entry_id, account_id, bucket, amount_minor, currency
    FROM postings;
DROP TABLE postings;
ALTER TABLE postings_v12 RENAME TO postings;
CREATE INDEX postings_by_entry ON postings (entry_id);
CREATE INDEX postings_by_account ON postings (account_id, entry_id);

CREATE TABLE vouchers (
    voucher_id TEXT PRIMARY KEY,
    code_digest TEXT NOT NULL UNIQUE CHECK (length(code_digest) = 64),
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    max_redemptions INTEGER NOT NULL CHECK (max_redemptions >= 1),
    redemptions INTEGER NOT NULL DEFAULT 0,
    note TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    CHECK (redemptions >= 0 AND redemptions <= max_redemptions)
);
CREATE TABLE voucher_redemptions (
    voucher_id TEXT NOT NULL REFERENCES vouchers (voucher_id),
    tenant_id TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    redeemed_at_ms INTEGER NOT NULL,
    PRIMARY KEY (voucher_id, tenant_id)
);
CREATE INDEX wallets_credit_expiry ON wallets (credit_expires_at_ms) WHERE credit_minor > 0
"""

PG_CREDIT_VOUCHERS_SCHEMA = """
ALTER TABLE wallets ADD COLUMN credit_minor BIGINT NOT NULL DEFAULT 0 CHECK (credit_minor >= 0);
ALTER TABLE wallets ADD COLUMN credit_expires_at_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE holds ADD COLUMN credit_minor BIGINT NOT NULL DEFAULT 0 CHECK (credit_minor >= 0);
ALTER TABLE postings DROP CONSTRAINT postings_bucket_check;
ALTER TABLE postings ADD CONSTRAINT postings_bucket_check
    CHECK (bucket IN ('available', 'held', 'credit'));

CREATE TABLE vouchers (
    voucher_id TEXT PRIMARY KEY,
    code_digest TEXT NOT NULL UNIQUE CHECK (length(code_digest) = 64),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    max_redemptions BIGINT NOT NULL CHECK (max_redemptions >= 1),
    redemptions BIGINT NOT NULL DEFAULT 0,
    note TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    CHECK (redemptions >= 0 AND redemptions <= max_redemptions)
);
CREATE TABLE voucher_redemptions (
    voucher_id TEXT NOT NULL REFERENCES vouchers (voucher_id),
    tenant_id TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    redeemed_at_ms BIGINT NOT NULL,
    PRIMARY KEY (voucher_id, tenant_id)
);
CREATE INDEX wallets_credit_expiry ON wallets (credit_expires_at_ms) WHERE credit_minor > 0
"""
