"""The shapes of the billing routes' answers (serve/billing/usecases.py builds them as plain dicts;
these Structs describe them in the OpenAPI document). Money as decimal strings plus minor units."""

from __future__ import annotations

from typing import Literal

import msgspec


class QuotasView(msgspec.Struct, frozen=True):
    """A plan's quotas (aex/core/plans.py); null means unlimited."""

    requests_per_minute: int
    requests_per_day: int | None
    agents_max: int | None
    concurrent_tasks_max: int
    payload_bytes_max: int
    certificates_max: int | None


class TermView(msgspec.Struct, frozen=True):
    plan: str
    agents: int
    price: str
    starts_at_ms: int
    ends_at_ms: int


class PlanView(msgspec.Struct, frozen=True):
    tenant_id: str
    plan: str
    term: TermView | None
    quotas: QuotasView


class InvoiceView(msgspec.Struct, frozen=True):
    """An invoice (negative `amount` for a credit note); `period` is its UTC month."""

    invoice_id: str
    tenant_id: str
    kind: Literal["PLAN", "VERIFICATION"]
    period: str
    description: str
    amount: str
    amount_minor: int
    currency: str
    quantity: int
    created_at_ms: int
    updated_at_ms: int


class InvoicePage(msgspec.Struct, frozen=True):
    """GET /v1/invoices: newest first; pass `next_cursor` as `starting_after` while
    `has_more`."""

    data: list[InvoiceView]
    has_more: bool
    next_cursor: str | None


class NewTermView(msgspec.Struct, frozen=True):
    starts_at_ms: int
    ends_at_ms: int
    price: str


class PlanChanged(msgspec.Struct, frozen=True):
    """A priced plan change: `net` charged when positive, rebated when negative."""

    tenant_id: str
    plan: str
    previous_plan: str
    agents: int
    term: NewTermView
    credit: str
    net: str
    net_minor: int
    currency: str
    invoice: InvoiceView | None
    quotas: QuotasView


class VerificationUsage(msgspec.Struct, frozen=True):
    calls: int
    price_per_call_usd: str
    amount_due_usd: str
    charged: str
    arrears: str


class Consumption(msgspec.Struct, frozen=True):
    agents: int


class PeriodCharges(msgspec.Struct, frozen=True):
    period: str
    verification_charged: str
    plans_invoiced: str


class UsageView(msgspec.Struct, frozen=True):
    tenant_id: str
    currency: str
    plan: str
    term: TermView | None
    limits: QuotasView
    consumption: Consumption
    verification: VerificationUsage
    plans_invoiced: str
    period: PeriodCharges


class StreamRevenue(msgspec.Struct, frozen=True):
    account: str
    amount: str
    amount_minor: int


class RevenueStreams(msgspec.Struct, frozen=True):
    fees: StreamRevenue
    verification: StreamRevenue
    plans: StreamRevenue
    breakage: StreamRevenue


class RevenueView(msgspec.Struct, frozen=True):
    currency: str
    period: str | None
    streams: RevenueStreams
    total: str
    total_minor: int
