# Rule: every way an operation can be refused is named here, and only here.
#
# Theory of operation (after TigerBeetle's result codes and h11's error_status_hint): one
# StrEnum per operation, members listed in precedence order. Checks run in enum order, so the
# first failing check is the answer, deterministically. Each reason carries an HTTP status hint;
# `serve/` turns a `Rejected` into RFC 9457 problem+json in exactly one place. The core never
# imports anything HTTP: the hint is a plain int.
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

__all__ = [
    "CertLifecycleRejectReason",
    "CertRequestRejectReason",
    "CertVerifyReason",
    "MoneyRejectReason",
    "Reason",
    "Rejected",
]


class Reason(StrEnum):
    """Base of every rejection-reason enum; members are in precedence order."""

    @property
    def http_status(self) -> int:
        # A hint for drivers: 422 unless the reason is listed as something more specific.
        return HTTP_STATUS_HINT.get(self.value, 422)


R = TypeVar("R", bound=Reason)


@dataclass(frozen=True, slots=True)
class Rejected(Generic[R]):
    """A refusal as a value: the reason, the offending field (dotted path) and a human detail."""

    reason: R
    field: str
    detail: str = ""

    @property
    def http_status(self) -> int:
        return self.reason.http_status


class MoneyRejectReason(Reason):
    AMOUNT_TYPE_INVALID = "amount_type_invalid"
    AMOUNT_NOT_FINITE = "amount_not_finite"
    AMOUNT_SYNTAX_INVALID = "amount_syntax_invalid"
    CURRENCY_UNKNOWN = "currency_unknown"
    AMOUNT_PRECISION_EXCEEDED = "amount_precision_exceeded"
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"


# Reason value -> HTTP status, where 422 (a well-formed request that breaks a rule) is wrong.
# Keys are the enum values, which are unique across all enums in this module (tested).
HTTP_STATUS_HINT: dict[str, int] = {}


class CertRequestRejectReason(Reason):
    """Why a certificate request is refused (aex/core/certs.py `open_request`)."""

    REQUEST_MALFORMED = "request_malformed"
    CERTIFICATE_TYPE_UNKNOWN = "certificate_type_unknown"
    CLAIMS_EMPTY = "claims_empty"
    CLAIMS_TOO_MANY = "claims_too_many"
    AUTHORIZATION_UNKNOWN = "authorization_unknown"
    TEXT_TOO_LONG = "text_too_long"
    PUBLIC_KEY_INVALID = "public_key_invalid"
    PROOF_OF_POSSESSION_FAILED = "proof_of_possession_failed"


class CertLifecycleRejectReason(Reason):
    """Why a review, issue, renew or revoke step is refused (aex/core/certs.py)."""

    CERTIFICATE_NOT_FOUND = "certificate_not_found"
    ILLEGAL_TRANSITION = "illegal_transition"
    REVOCATION_REASON_INVALID = "revocation_reason_invalid"


class CertVerifyReason(Reason):
    """Why a certificate does not verify, in the order the checks run (aex/core/certs.py).

    The certificate's own signature is checked before anything it says is believed; the CRL is
    checked before revocation is looked up in it; validity times come last, so a revoked and
    expired certificate reports `revoked`.
    """

    CA_DOCUMENT_MALFORMED = "ca_document_malformed"
    CERTIFICATE_MALFORMED = "certificate_malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    CRL_MALFORMED = "crl_malformed"
    CRL_UNKNOWN_KEY = "crl_unknown_key"
    CRL_BAD_SIGNATURE = "crl_bad_signature"
    CRL_STALE = "crl_stale"
    REVOKED = "revoked"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"


HTTP_STATUS_HINT.update(
    {
        CertLifecycleRejectReason.CERTIFICATE_NOT_FOUND.value: 404,
        CertLifecycleRejectReason.ILLEGAL_TRANSITION.value: 409,
    }
)
