"""The market's SQLite tables: work, bids, evaluations, contracts, outcomes, the outbox.

Kept apart from serve/stores/migrations.py (the gateway's numbered migrations) so that both
evolve without renumbering each other: these statements are idempotent (`IF NOT EXISTS`) and
run once per process start, inside one transaction. Money is integer minor units; JSON columns
hold the core's `to_json` shapes.
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
CREATE INDEX IF NOT EXISTS certificate_owners_by_provider ON certificate_owners (provider_id)
"""
