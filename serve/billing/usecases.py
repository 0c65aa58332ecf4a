"""Billing use cases (issue 15 item 4; docs/payments.md "Billing"): plan purchases, upgrades and
downgrades, the tenant's usage and invoices, and the platform's revenue by stream.

Rules decided here (the driver's; the prices and the proration are aex/core/billing.py's):
- A plan change is one transaction of the market's driver: the priced change
  (`price_plan_change`), its ledger Charge (net > 0, from the tenant's USD cash) or Rebate
  (net < 0, to it) against `system:plan_revenue`, the tenant's plan, its term
  (`plan_subscriptions`), an invoice row for the money moved, the credentials-epoch bump (every
  worker re-reads the tenant's plan on its next request: the limits follow at once) and the
  events `billing.plan_changed` and `billing.invoice_issued` through the outbox. A wallet that
  cannot pay is refused with 402 plan-payment-required and nothing is written.
- The operator's `PUT /v1/admin/tenants/{id}/plan` stays a complimentary override: the plan
  changes (epoch bumped, `billing.plan_changed` with `source: "operator"`), nothing is charged
  and the tenant's paid term, if any, is kept (a later change by the tenant credits what of it
  is unused, as always).
- Invoices are listed newest first, `limit` (1..100) and `starting_after` (an invoice id of the
  previous page), with `has_more`; another tenant's invoice is 404.
- Revenue by stream is read from the ledger's system accounts (sums of their postings, by UTC
  month when a `period` "YYYY-MM" is given).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

from aex.core.billing import (
    BILLING_CURRENCY,
    price_plan_change,
    verification_cents_due,
    verification_owed_micro_usd,
)
from aex.core.events import EventType
from aex.core.ledger import (
    BREAKAGE_REVENUE_ACCOUNT,
    PLAN_REVENUE_ACCOUNT,
    PLATFORM_REVENUE_ACCOUNT,
    VERIFICATION_REVENUE_ACCOUNT,
    Charge,
    Rebate,
)
from aex.core.money import CURRENCY_EXPONENTS, Money, format_amount
from aex.core.plans import PLAN_QUOTAS, Plan
from aex.core.reasons import LedgerRejectReason, MoneyRejectReason, Rejected
from serve.gateway.paging import page_size
from serve.gateway.problems import FieldError, ProblemError, listed, problem_for_rejected
from serve.identity.security import Principal, new_id
from serve.market.usecases import Market
from serve.settlement.wallets import wallet_id
from serve.stores.pages import Keyset, keyset_page, page_answer
from serve.stores.rows import many, one, scalar, select_list
from serve.stores.sqlite import mark_credentials_epoch_bumped

REVENUE_STREAMS: Final = {
    "fees": PLATFORM_REVENUE_ACCOUNT,
    "verification": VERIFICATION_REVENUE_ACCOUNT,
    "plans": PLAN_REVENUE_ACCOUNT,
    "breakage": BREAKAGE_REVENUE_ACCOUNT,
}
_INVOICES_KEYSET = Keyset("invoices", "created_at_ms", "invoice_id")
# A wallet short of the net, or no USD wallet at all: the plan is unpaid (402).
_UNPAID: Final = frozenset(
    {LedgerRejectReason.INSUFFICIENT_FUNDS, LedgerRejectReason.ACCOUNT_UNKNOWN}
)
# A UTC month since the epoch (ledger times are milliseconds since 1970): "0000-01" is refused
# as malformed, not a 500 from datetime.
_PERIOD = re.compile(r"^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])$")


class _InvoiceRow(NamedTuple):
    invoice_id: str
    tenant_id: str
    kind: str
    period: str
    description: str
    amount_minor: int
    currency: str
    quantity: int
    created_at_ms: int
    updated_at_ms: int


class _TermRow(NamedTuple):
    plan: str
    agents: int
    term_price_minor: int
    starts_at_ms: int
    ends_at_ms: int


class _CallsRow(NamedTuple):
    calls: int
    cents_posted: int


class _StreamRow(NamedTuple):
    account_id: str
    amount_minor: int


_INVOICE_COLUMNS = select_list(_InvoiceRow)
_SUBSCRIPTION_SELECT = (
    f"SELECT {select_list(_TermRow)} FROM plan_subscriptions"  # noqa: S608
    " WHERE tenant_id = ?"
)


def _usd(amount_minor: int) -> str:
    return format_amount(Money(amount_minor, BILLING_CURRENCY))


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def _period(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m")


def period_bounds_ms(period: str) -> tuple[int, int]:
    """[start, end) of a UTC month "YYYY-MM" in milliseconds; 422 when malformed."""
    if not _PERIOD.match(period):
        raise ProblemError(
            422,
            "invalid-request",
            "period is a UTC month, YYYY-MM",
            errors=(FieldError("period", "invalid_period"),),
        )
    year, month = int(period[:4]), int(period[5:])
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def quotas_view(plan: Plan) -> dict[str, Any]:
    quotas = PLAN_QUOTAS[plan]
    return {
        "requests_per_minute": quotas.requests_per_minute,
        "requests_per_day": quotas.requests_per_day,
        "agents_max": quotas.agents_max,
        "concurrent_tasks_max": quotas.concurrent_tasks_max,
        "payload_bytes_max": quotas.payload_bytes_max,
        "certificates_max": quotas.certificates_max,
    }


def invoice_view(row: _InvoiceRow) -> dict[str, Any]:
    return {
        "invoice_id": row.invoice_id,
        "tenant_id": row.tenant_id,
        "kind": row.kind,
        "period": row.period,
        "description": row.description,
        "amount": _usd(int(row.amount_minor)),
        "amount_minor": int(row.amount_minor),
        "currency": row.currency,
        "quantity": int(row.quantity),
        "created_at_ms": int(row.created_at_ms),
        "updated_at_ms": int(row.updated_at_ms),
    }


def bump_credentials_epoch(tx: Any) -> None:
    """In the plan change's transaction: every worker drops its cached credentials (and the
    plan they carry) on its next request (serve/identity/security.py)."""
    tx.execute("UPDATE credentials_epoch SET epoch = epoch + 1")
    mark_credentials_epoch_bumped()  # SQLite publishes the epoch map after the COMMIT


class Billing:
    def __init__(self, market: Market) -> None:
        self.market = market

    # -- plans ------------------------------------------------------------------------------

    def plan(self, caller: Principal) -> dict[str, Any]:
        tenant_id = _tenant_of(caller)
        with self.market.db.reader() as connection:
            plan = Plan(
                scalar(
                    connection.execute("SELECT plan FROM tenants WHERE tenant_id = ?", (tenant_id,))
                )
            )
            term = one(_TermRow, connection.execute(_SUBSCRIPTION_SELECT, (tenant_id,)))
        return {
            "tenant_id": tenant_id,
            "plan": plan.value,
            "term": None if term is None else _term_view(term),
            "quotas": quotas_view(plan),
        }

    def change_plan(self, caller: Principal, plan: Plan, agents: int) -> dict[str, Any]:
        """Buys, upgrades or downgrades the caller's plan (the module's rules)."""
        tenant_id = _tenant_of(caller)

        def write(tx: Any) -> dict[str, Any]:
            now = tx.now_ms
            current = Plan(
                scalar(
                    tx.execute(
                        "SELECT plan FROM tenants WHERE tenant_id = ?" + tx.for_update,  # noqa: S608
                        (tenant_id,),
                    )
                )
            )
            term = one(_TermRow, tx.execute(_SUBSCRIPTION_SELECT + tx.for_update, (tenant_id,)))
            registered = int(
                scalar(
                    tx.execute("SELECT count(*) FROM providers WHERE tenant_id = ?", (tenant_id,))
                )
            )
            paid = term is not None and int(term.ends_at_ms) > now
            priced = price_plan_change(
                plan=plan,
                agents=agents,
                agents_registered=registered,
                current_plan=current,
                current_agents=int(term.agents) if term is not None else 1,
                current_term_price_minor=int(term.term_price_minor) if term and paid else 0,
                current_term_ends_at_ms=int(term.ends_at_ms) if term and paid else 0,
                now_ms=now,
            )
            if isinstance(priced, Rejected):
                raise problem_for_rejected(priced)
            invoice_id = new_id("inv") if priced.net_minor != 0 else None
            money = Money(abs(priced.net_minor), BILLING_CURRENCY)
            wallet = wallet_id(tenant_id, BILLING_CURRENCY)
            if priced.net_minor > 0:
                charged = tx.session.apply_ledger(
                    Charge(f"plan-{invoice_id}", wallet, money, PLAN_REVENUE_ACCOUNT)
                )
                if isinstance(charged, Rejected):
                    if charged.reason in _UNPAID:
                        raise ProblemError(
                            402,
                            "plan-payment-required",
                            f"{plan} costs {_usd(priced.net_minor)} USD now: deposit USD",
                        )
                    raise problem_for_rejected(charged)
            elif priced.net_minor < 0:
                rebated = tx.session.apply_ledger(
                    Rebate(f"plan-{invoice_id}", wallet, money, PLAN_REVENUE_ACCOUNT)
                )
                if isinstance(rebated, Rejected):
                    raise problem_for_rejected(rebated)
            tx.execute("UPDATE tenants SET plan = ? WHERE tenant_id = ?", (plan.value, tenant_id))
            tx.execute(
                "INSERT INTO plan_subscriptions"
                " (tenant_id, plan, agents, term_price_minor, starts_at_ms, ends_at_ms)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id) DO UPDATE SET"
                " plan = excluded.plan, agents = excluded.agents,"
                " term_price_minor = excluded.term_price_minor,"
                " starts_at_ms = excluded.starts_at_ms, ends_at_ms = excluded.ends_at_ms",
                (
                    tenant_id,
                    plan.value,
                    priced.agents,
                    priced.term_price_minor,
                    priced.starts_at_ms,
                    priced.ends_at_ms,
                ),
            )
            bump_credentials_epoch(tx)
            invoice = None
            if invoice_id is not None:
                credit = (
                    f"; credit {_usd(priced.credit_minor)} for the unused {current} term"
                    if priced.credit_minor
                    else ""
                )
                row = _InvoiceRow(
                    invoice_id=invoice_id,
                    tenant_id=tenant_id,
                    kind="PLAN",
                    period=_period(now),
                    description=f"{plan} for {priced.agents} agent(s),"
                    f" {_day(priced.starts_at_ms)} to {_day(priced.ends_at_ms)}:"
                    f" {_usd(priced.term_price_minor)}{credit}",
                    amount_minor=priced.net_minor,
                    currency=BILLING_CURRENCY,
                    quantity=priced.agents,
                    created_at_ms=now,
                    updated_at_ms=now,
                )
                tx.execute(
                    f"INSERT INTO invoices ({_INVOICE_COLUMNS})"  # noqa: S608
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                invoice = invoice_view(row)
            view = {
                "tenant_id": tenant_id,
                "plan": plan.value,
                "previous_plan": current.value,
                "agents": priced.agents,
                "term": {
                    "starts_at_ms": priced.starts_at_ms,
                    "ends_at_ms": priced.ends_at_ms,
                    "price": _usd(priced.term_price_minor),
                },
                "credit": _usd(priced.credit_minor),
                "net": _usd(priced.net_minor),
                "net_minor": priced.net_minor,
                "currency": BILLING_CURRENCY,
                "invoice": invoice,
                "quotas": quotas_view(plan),
            }
            tx.emit(EventType.BILLING_PLAN_CHANGED, tenant_id, _plan_event(view, "tenant"))
            if invoice is not None:
                tx.emit(EventType.BILLING_INVOICE_ISSUED, invoice_id or "", invoice)
            return view

        result: dict[str, Any] = self.market.write(write)
        return result

    def override_plan(self, tenant_id: str, plan: Plan) -> bool:
        """The operator's complimentary override: no charge, the paid term kept. Answers
        whether the tenant exists."""

        def write(tx: Any) -> bool:
            previous = scalar(
                tx.execute(
                    "SELECT plan FROM tenants WHERE tenant_id = ?" + tx.for_update,  # noqa: S608
                    (tenant_id,),
                )
            )
            if previous is None:
                return False
            if previous != plan.value:
                tx.execute(
                    "UPDATE tenants SET plan = ? WHERE tenant_id = ?", (plan.value, tenant_id)
                )
                bump_credentials_epoch(tx)
                view = {"tenant_id": tenant_id, "plan": plan.value, "previous_plan": previous}
                tx.emit(EventType.BILLING_PLAN_CHANGED, tenant_id, _plan_event(view, "operator"))
            return True

        return bool(self.market.write(write))

    # -- usage and invoices -----------------------------------------------------------------

    def usage(self, caller: Principal, period: str | None = None) -> dict[str, Any]:
        """Lifetime verification totals, and what was charged in `period` (a UTC month,
        default the current one): verification cents and plan invoices posted in it."""
        tenant_id = _tenant_of(caller)
        period = period or _period(self.market.clock())
        start, end = period_bounds_ms(period)
        prefix = f"verification-{tenant_id}-"
        with self.market.db.reader() as connection:
            verified_in_period = scalar(
                connection.execute(
                    "SELECT coalesce(sum(p.amount_minor), 0) FROM journal_entries e"
                    " JOIN postings p USING (entry_id) WHERE p.account_id = ?"
                    " AND substr(e.operation_id, 1, ?) = ? AND e.created_at_ms >= ?"
                    " AND e.created_at_ms < ?",
                    (VERIFICATION_REVENUE_ACCOUNT, len(prefix), prefix, start, end),
                )
            )
            plans_in_period = scalar(
                connection.execute(
                    "SELECT coalesce(sum(amount_minor), 0) FROM invoices WHERE tenant_id = ?"
                    " AND kind = 'PLAN' AND created_at_ms >= ? AND created_at_ms < ?",
                    (tenant_id, start, end),
                )
            )
            plan = Plan(
                scalar(
                    connection.execute("SELECT plan FROM tenants WHERE tenant_id = ?", (tenant_id,))
                )
            )
            calls_row = one(
                _CallsRow,
                connection.execute(
                    f"SELECT {select_list(_CallsRow)} FROM verification_calls"  # noqa: S608
                    " WHERE tenant_id = ?",
                    (tenant_id,),
                ),
            )
            agents = int(
                scalar(
                    connection.execute(
                        "SELECT count(*) FROM providers WHERE tenant_id = ?", (tenant_id,)
                    )
                )
            )
            term = one(_TermRow, connection.execute(_SUBSCRIPTION_SELECT, (tenant_id,)))
            plan_paid = scalar(
                connection.execute(
                    "SELECT coalesce(sum(amount_minor), 0) FROM invoices"
                    " WHERE tenant_id = ? AND kind = 'PLAN'",
                    (tenant_id,),
                )
            )
        calls, posted = (
            (0, 0) if calls_row is None else (int(calls_row.calls), int(calls_row.cents_posted))
        )
        micros = verification_owed_micro_usd(calls)
        return {
            "tenant_id": tenant_id,
            "currency": BILLING_CURRENCY,
            "plan": plan.value,
            "term": None if term is None else _term_view(term),
            "limits": quotas_view(plan),
            "consumption": {"agents": agents},
            "verification": {
                "calls": calls,
                "price_per_call_usd": "0.001",
                "amount_due_usd": f"{micros // 1_000_000}.{micros % 1_000_000:06d}",
                "charged": _usd(posted),
                "arrears": _usd(verification_cents_due(calls, posted)),
            },
            "plans_invoiced": _usd(int(plan_paid)),
            "period": {
                "period": period,
                "verification_charged": _usd(int(verified_in_period)),
                "plans_invoiced": _usd(int(plans_in_period)),
            },
        }

    def invoices(
        self, caller: Principal, *, limit: int, starting_after: str | None
    ) -> dict[str, Any]:
        with self.market.db.reader() as connection:
            listing = keyset_page(
                connection,
                _INVOICES_KEYSET,
                f"SELECT {_INVOICE_COLUMNS} FROM invoices",  # noqa: S608
                "tenant_id = ?",
                [_tenant_of(caller)],
                starting_after=starting_after,
                limit=page_size(limit),
            )
            rows, more = listed(listing, "unknown_invoice")
        return page_answer(
            [invoice_view(row) for row in many(_InvoiceRow, rows)], more, "invoice_id"
        )

    def invoice(self, caller: Principal, invoice_id: str) -> dict[str, Any]:
        rows = many(
            _InvoiceRow,
            self.market.db.read(
                f"SELECT {_INVOICE_COLUMNS} FROM invoices WHERE invoice_id = ? AND tenant_id = ?",  # noqa: S608
                (invoice_id, _tenant_of(caller)),
            ),
        )
        if not rows:
            raise ProblemError(404, "not-found", "no such invoice")
        return invoice_view(rows[0])

    # -- the operator -----------------------------------------------------------------------

    def revenue(self, currency: str, period: str | None) -> dict[str, Any]:
        if currency not in CURRENCY_EXPONENTS:  # a well-formed code the exchange does not hold
            reason = MoneyRejectReason.CURRENCY_UNKNOWN
            raise problem_for_rejected(Rejected(reason, "currency", f"{currency!r}"))
        columns = select_list(
            _StreamRow, account_id="p.account_id", amount_minor="coalesce(sum(p.amount_minor), 0)"
        )
        sql = (
            f"SELECT {columns} FROM postings p"  # noqa: S608
            " JOIN journal_entries e USING (entry_id)"
            f" WHERE p.currency = ? AND p.account_id IN ({', '.join('?' * len(REVENUE_STREAMS))})"
        )
        parameters: tuple[Any, ...] = (currency, *REVENUE_STREAMS.values())
        if period is not None:
            start, end = period_bounds_ms(period)
            sql += " AND e.created_at_ms >= ? AND e.created_at_ms < ?"
            parameters += (start, end)
        sums = {
            row.account_id: int(row.amount_minor)
            for row in many(
                _StreamRow, self.market.db.read(sql + " GROUP BY p.account_id", parameters)
            )
        }
        streams = {
            name: {
                "account": account,
                "amount": format_amount(Money(sums.get(account, 0), currency)),
                "amount_minor": sums.get(account, 0),
            }
            for name, account in REVENUE_STREAMS.items()
        }
        total = sum(sums.values())
        return {
            "currency": currency,
            "period": period,
            "streams": streams,
            "total": format_amount(Money(total, currency)),
            "total_minor": total,
        }


def _term_view(term: _TermRow) -> dict[str, Any]:
    return {
        "plan": term.plan,
        "agents": int(term.agents),
        "price": _usd(int(term.term_price_minor)),
        "starts_at_ms": int(term.starts_at_ms),
        "ends_at_ms": int(term.ends_at_ms),
    }


def _plan_event(view: dict[str, Any], source: str) -> dict[str, Any]:
    keys = ("tenant_id", "plan", "previous_plan", "agents", "term", "credit", "net", "currency")
    event = {key: view[key] for key in keys if key in view}
    invoice = view.get("invoice")
    event["invoice_id"] = None if invoice is None else invoice["invoice_id"]
    event["source"] = source
    return event


def _tenant_of(caller: Principal) -> str:
    if caller.tenant_id is None:
        raise ProblemError(403, "tenant-credential-required", "billing is a tenant's")
    return caller.tenant_id
