"""The token bank's vouchers (issue 15 item 3; docs/payments.md "Token bank").

Rules decided here (the driver's; the postings are aex/core/ledger.py's):
- The operator issues a voucher: amount, currency, expiry, how many tenants may redeem it
  (`max_redemptions`, 1 for a single-use code). The code is shown once in the answer and only
  its SHA-256 digest is stored, like an API key's; nothing is posted at issue (a voucher is a
  promise, not credit: unredeemed vouchers cost nothing and expire silently).
- A tenant redeems a code into its wallet's credit bucket (ledger RedeemCredit:
  credit_outstanding -> the tenant's credit). One transaction takes the voucher's row lock,
  checks expiry and the count, inserts the (voucher, tenant) row (each tenant redeems a voucher
  once), increments the count, posts the credit and emits voucher.redeemed: a voucher redeemed
  twice in parallel credits once, on SQLite (serialised writers) and PostgreSQL (the row lock).
- A wrong code answers voucher-not-found (404) whatever it is; the holder of a real code learns
  only what the code itself entitles it to (expired, exhausted, already redeemed).
- Expired credit is moved to breakage by `expire_due(now_ms)` (ExpireCredit per wallet), which
  the background loop runs every poll and the operator may run with an explicit `now_ms`.
"""

from __future__ import annotations

import hashlib
import secrets
from decimal import Decimal
from typing import Annotated, Any, NamedTuple

import msgspec

from aex.core import Money, Rejected, format_amount, limits, parse_money
from aex.core.events import EventType
from aex.core.ledger import ExpireCredit, RedeemCredit
from aex.core.reasons import LedgerRejectReason, VoucherRejectReason
from serve.gateway.problems import problem_for_rejected
from serve.gateway.schemas import Currency, Strict, TimeMs
from serve.identity.security import Principal, new_id, next_id, now_ms
from serve.market.usecases import Market, Tx
from serve.settlement.wallets import wallet_id
from serve.stores.rows import many, one, select_list

CODE_PREFIX = "aexv_"
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Note = Annotated[str, msgspec.Meta(max_length=200)]


class VoucherCreate(Strict, frozen=True):
    amount: Decimal
    currency: Currency
    expires_at_ms: TimeMs
    max_redemptions: int = 1
    note: Note = ""


class VoucherView(msgspec.Struct, frozen=True):
    voucher_id: str
    amount: str
    currency: str
    expires_at_ms: TimeMs
    max_redemptions: int
    redemptions: int
    note: str
    created_at_ms: TimeMs


class VoucherIssued(msgspec.Struct, frozen=True):
    """The issue's answer: the only time the code is shown."""

    voucher: VoucherView
    code: str


class VoucherRedeem(Strict, frozen=True):
    code: Code


class VoucherRedemption(msgspec.Struct, frozen=True):
    voucher_id: str
    tenant_id: str
    amount: str
    currency: str
    credit: str  # the wallet's credit bucket after the redemption
    credit_expires_at_ms: TimeMs
    operation_id: str


class CreditExpirySweep(Strict, frozen=True):
    now_ms: int | None = None


class CreditExpired(msgspec.Struct, frozen=True):
    wallet_id: str
    tenant_id: str
    amount: str
    currency: str
    operation_id: str


class CreditSweepResult(msgspec.Struct, frozen=True):
    now_ms: int
    expired: list[CreditExpired]


def code_digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _refused(reason: VoucherRejectReason, field: str, detail: str) -> Exception:
    return problem_for_rejected(Rejected(reason, field, detail))


class _VoucherRow(NamedTuple):
    voucher_id: str
    amount_minor: int
    currency: str
    expires_at_ms: int
    max_redemptions: int
    redemptions: int
    note: str
    created_at_ms: int


class _ExpiringRow(NamedTuple):
    wallet_id: str
    currency: str


_COLUMNS = select_list(_VoucherRow)


def _view(row: _VoucherRow) -> VoucherView:
    return VoucherView(
        voucher_id=row.voucher_id,
        amount=format_amount(Money(int(row.amount_minor), row.currency)),
        currency=row.currency,
        expires_at_ms=int(row.expires_at_ms),
        max_redemptions=int(row.max_redemptions),
        redemptions=int(row.redemptions),
        note=row.note,
        created_at_ms=int(row.created_at_ms),
    )


class Vouchers:
    def __init__(self, market: Market) -> None:
        self.market = market

    # -- the operator ---------------------------------------------------------------------

    def issue(self, body: VoucherCreate) -> VoucherIssued:
        money = parse_money(body.amount, body.currency)
        if isinstance(money, Rejected):
            raise problem_for_rejected(money)
        if money.amount_minor <= 0:
            raise _refused(
                VoucherRejectReason.VOUCHER_AMOUNT_NOT_POSITIVE, "amount", "must be positive"
            )
        if not 1 <= body.max_redemptions <= limits.voucher_redemptions_max:
            raise _refused(
                VoucherRejectReason.VOUCHER_REDEMPTIONS_OUT_OF_RANGE,
                "max_redemptions",
                f"1 to {limits.voucher_redemptions_max}",
            )
        expires_at_ms = body.expires_at_ms
        code = CODE_PREFIX + secrets.token_urlsafe(24)
        voucher_id = new_id("vch")

        def write(tx: Tx) -> VoucherView:
            if expires_at_ms <= tx.now_ms:
                raise _refused(
                    VoucherRejectReason.VOUCHER_EXPIRY_NOT_IN_FUTURE,
                    "expires_at_ms",
                    "the expiry must be in the future",
                )
            tx.execute(
                f"INSERT INTO vouchers (code_digest, {_COLUMNS})"  # noqa: S608 (constant columns)
                " VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                (
                    code_digest(code),
                    voucher_id,
                    money.amount_minor,
                    money.currency,
                    expires_at_ms,
                    body.max_redemptions,
                    body.note,
                    tx.now_ms,
                ),
            )
            view = _view(
                _VoucherRow(
                    voucher_id=voucher_id,
                    amount_minor=money.amount_minor,
                    currency=money.currency,
                    expires_at_ms=expires_at_ms,
                    max_redemptions=body.max_redemptions,
                    redemptions=0,
                    note=body.note,
                    created_at_ms=tx.now_ms,
                )
            )
            tx.emit(
                EventType.VOUCHER_ISSUED,
                voucher_id,
                {
                    "voucher_id": voucher_id,
                    "amount": view.amount,
                    "currency": view.currency,
                    "expires_at_ms": view.expires_at_ms,
                    "max_redemptions": view.max_redemptions,
                },
            )
            return view

        return VoucherIssued(self.market.write(write), code)

    def voucher(self, voucher_id: str) -> VoucherView:
        rows = many(
            _VoucherRow,
            self.market.db.read(
                f"SELECT {_COLUMNS} FROM vouchers WHERE voucher_id = ?",  # noqa: S608
                (voucher_id,),
            ),
        )
        if not rows:
            raise _refused(VoucherRejectReason.VOUCHER_NOT_FOUND, "voucher_id", "no such voucher")
        return _view(rows[0])

    # -- tenants --------------------------------------------------------------------------

    async def redeem(self, caller: Principal, body: VoucherRedeem) -> VoucherRedemption:
        tenant_id = caller.tenant_id
        assert tenant_id is not None
        digest = code_digest(body.code)

        def write(tx: Tx) -> VoucherRedemption:
            row = one(
                _VoucherRow,
                tx.execute(
                    f"SELECT {_COLUMNS} FROM vouchers WHERE code_digest = ?{tx.for_update}",  # noqa: S608
                    (digest,),
                ),
            )
            if row is None:
                raise _refused(VoucherRejectReason.VOUCHER_NOT_FOUND, "code", "no such voucher")
            voucher_id, amount_minor, currency = row.voucher_id, int(row.amount_minor), row.currency
            expires_at_ms = int(row.expires_at_ms)
            max_redemptions, redemptions = int(row.max_redemptions), int(row.redemptions)
            if tx.now_ms >= expires_at_ms:
                raise _refused(
                    VoucherRejectReason.VOUCHER_EXPIRED, "code", f"expired at {expires_at_ms} ms"
                )
            seen = tx.execute(
                "SELECT 1 FROM voucher_redemptions WHERE voucher_id = ? AND tenant_id = ?",
                (voucher_id, tenant_id),
            ).fetchone()
            if seen is not None:
                raise _refused(
                    VoucherRejectReason.VOUCHER_ALREADY_REDEEMED, "code", "redeemed before"
                )
            if redemptions >= max_redemptions:
                raise _refused(VoucherRejectReason.VOUCHER_EXHAUSTED, "code", "no redemptions left")
            # The guard is in the UPDATE itself too: exactly one of two racing redemptions of
            # the last use changes the row.
            updated = tx.execute(
                "UPDATE vouchers SET redemptions = redemptions + 1"
                " WHERE voucher_id = ? AND redemptions < max_redemptions",
                (voucher_id,),
            )
            if updated.rowcount != 1:
                raise _refused(VoucherRejectReason.VOUCHER_EXHAUSTED, "code", "no redemptions left")
            operation_id = f"redeem-{voucher_id}-{tenant_id}"
            tx.execute(
                "INSERT INTO voucher_redemptions"
                " (voucher_id, tenant_id, operation_id, redeemed_at_ms) VALUES (?, ?, ?, ?)",
                (voucher_id, tenant_id, operation_id, tx.now_ms),
            )
            money = Money(amount_minor, currency)
            applied = tx.ledger(
                RedeemCredit(operation_id, wallet_id(tenant_id, currency), money, expires_at_ms)
            )
            wallet = next(
                w for w in applied.wallets if w.wallet_id == wallet_id(tenant_id, currency)
            )
            redemption = VoucherRedemption(
                voucher_id,
                tenant_id,
                format_amount(money),
                currency,
                format_amount(Money(wallet.credit_minor, currency)),
                wallet.credit_expires_at_ms,
                operation_id,
            )
            tx.emit(
                EventType.VOUCHER_REDEEMED,
                voucher_id,
                {
                    "voucher_id": voucher_id,
                    "tenant_id": tenant_id,
                    "amount": redemption.amount,
                    "currency": currency,
                    "credit_expires_at_ms": redemption.credit_expires_at_ms,
                },
            )
            return redemption

        result: VoucherRedemption = await self.market.write_async(write)
        return result

    # -- the expiry sweep -------------------------------------------------------------------

    def expire_due(self, at_ms: int | None = None) -> CreditSweepResult:
        """Moves the credit of every wallet whose credit expired at `at_ms` (now by default) to
        breakage, one transaction per wallet; a wallet a redemption extended in between is
        refused by the ledger (CREDIT_NOT_EXPIRED) and skipped."""
        moment = now_ms() if at_ms is None else at_ms
        rows = many(
            _ExpiringRow,
            self.market.db.read(
                f"SELECT {select_list(_ExpiringRow)} FROM wallets"  # noqa: S608
                " WHERE credit_minor > 0 AND credit_expires_at_ms <= ?"
                " ORDER BY credit_expires_at_ms LIMIT ?",
                (moment, limits.credit_expiries_per_sweep_max),
            ),
        )
        expired: list[CreditExpired] = []
        for row in rows:
            found = self.market.write(_expire(row.wallet_id, row.currency, moment))
            if found is not None:
                expired.append(found)
        return CreditSweepResult(moment, expired)


def _expire(wallet: str, currency: str, moment: int) -> Any:
    def write(tx: Tx) -> CreditExpired | None:
        operation_id = f"expire-{next_id()}"
        result = tx.session.apply_ledger(ExpireCredit(operation_id, wallet, currency, moment))
        if isinstance(result, Rejected):
            assert result.reason is LedgerRejectReason.CREDIT_NOT_EXPIRED, result
            return None
        amount_minor = next(p.amount_minor for p in result.entry.postings if p.amount_minor > 0)
        tenant_id = wallet.removeprefix("tenant:").rsplit(":", 1)[0]
        expired = CreditExpired(
            wallet,
            tenant_id,
            format_amount(Money(amount_minor, currency)),
            currency,
            operation_id,
        )
        tx.emit(
            EventType.CREDIT_EXPIRED,
            tenant_id,
            {
                "tenant_id": tenant_id,
                "wallet_id": wallet,
                "amount": expired.amount,
                "currency": currency,
                "expired_at_ms": moment,
            },
        )
        return expired

    return write
