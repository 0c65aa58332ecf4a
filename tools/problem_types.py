"""Every problem `type` the exchange can emit, found in the code itself, for docs/problems.md.

Three sources: the core's refusal reasons (aex/core/reasons.py: every member of every `Reason`
enum becomes `https://aex.dev/problems/<value with - for _>`), the slugs that serve/ raises by
hand (`ProblemError(status, "slug", ...)` and the gateway's `_unauthorized("slug", ...)`, found
by reading serve/'s syntax tree, so a new one cannot be missed), and the status fallbacks of
serve/gateway/problems.py (Litestar's own 404, 405, 413 ...). tests/serve/test_problem_types.py
checks that docs/problems.md names each one.
"""

from __future__ import annotations

import ast
from pathlib import Path

from aex.core import reasons
from serve.gateway.problems import _STATUS_SLUGS, PROBLEM_TYPE_BASE

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "problems.md"
# Callables whose first string argument is a problem slug, with their status when it is implied.
_RAISERS: dict[str, int | None] = {"ProblemError": None, "_unauthorized": 401}


def reason_slugs() -> dict[str, int]:
    """slug -> HTTP status, from every core reason."""
    found: dict[str, int] = {}
    for name in reasons.__all__:
        enum = getattr(reasons, name)
        if (
            isinstance(enum, type)
            and issubclass(enum, reasons.Reason)
            and enum is not reasons.Reason
        ):
            for member in enum:
                found[member.value.replace("_", "-")] = member.http_status
    return found


def raised_slugs() -> dict[str, int | None]:
    """slug -> HTTP status (None where the status is not a literal), raised in serve/."""
    found: dict[str, int | None] = {}
    for path in sorted((ROOT / "serve").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name not in _RAISERS:
                continue
            status = _RAISERS[name]
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, int):
                    status = arg.value
                elif isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.setdefault(arg.value, status)
                    break
    return found


def fallback_slugs() -> dict[str, int | None]:
    return {**{slug: status for status, slug in _STATUS_SLUGS.items()}, "http-error": None}


def all_type_uris() -> set[str]:
    slugs = {*reason_slugs(), *raised_slugs(), *fallback_slugs()}
    return {PROBLEM_TYPE_BASE + slug for slug in slugs}


# What each slug raised by serve/ (or a status fallback) means to a client.
MEANINGS: dict[str, str] = {
    "invalid-request": "Malformed JSON, a missing or unknown field, a wrong type or a bad path or "
    "query parameter; `errors[]` names each field. Every body or parameter the exchange will "
    "not take is a 422, this one or a rule's own slug",
    "unauthorized": "Litestar's own 401 (no credential where one is needed)",
    "forbidden": "Litestar's own 403",
    "not-found": "No such resource or path, or not the caller's (never tells which)",
    "method-not-allowed": "The path exists, not with this method (`Allow` lists the methods)",
    "conflict": "Litestar's own 409",
    "payload-too-large": "The body is over the plan's (or the server's) maximum size",
    "unsupported-media-type": "The body is not `application/json`",
    "unprocessable": "Litestar's own 422",
    "rate-limited": "Over the per-minute limit of the credential or address (`Retry-After`)",
    "internal-error": "An unexpected failure; nothing was written (quote `request_id`)",
    "timeout": "No answer within the request timeout; retry with the same Idempotency-Key",
    "dependency-unavailable": "PostgreSQL is unreachable or behind its open circuit breaker, "
    "or another connection held the SQLite file's write lock past `AEX_SQLITE_BUSY_TIMEOUT_S`; "
    "nothing was written: retry after `Retry-After` seconds with the same Idempotency-Key",
    "insufficient-storage": "The exchange's SQLite disk is full: the write was refused and "
    "nothing was written; reads still work",
    "http-error": "Any other HTTP error Litestar raises, with its own status",
    "agent-card-too-large": "The agent card is over its byte limit",
    "consumer-credential-required": "Only the work's consumer (a tenant key) may do this",
    "credential-invalid": "The API key is not one this exchange issued",
    "credential-malformed": "The credential is not of any accepted shape",
    "credential-missing": "The route needs X-API-Key or `Authorization: Bearer`",
    "credential-not-accepted": "A kind of credential this route does not take",
    "credential-revoked": "The API key was revoked (or rotated away)",
    "key-taken": "This delegation public key is already registered to another provider",
    "not-the-delegator": "Only the resold provider (the delegator) may revoke its delegation",
    "public-key-invalid": "The public key is not an ES256 (P-256) JWK",
    "plan-payment-required": "Available USD does not cover the plan change's price: deposit USD",
    "verification-payment-required": "More than $1.00 of verification calls is unpaid: deposit USD",
    "csrf-token-mismatch": "The dashboard form's CSRF token does not match its session or cookie",
    "idempotency-key-in-flight": "A request with this Idempotency-Key is still running",
    "idempotency-key-invalid": "The Idempotency-Key header is not 1 to 255 visible characters",
    "idempotency-key-reused": "This Idempotency-Key was used with a different request",
    "idempotency-replay-withheld": "The first answer held a secret shown once; it is not replayed",
    "insufficient-scope": "The credential lacks the route's scope (`WWW-Authenticate` names it)",
    "limit-out-of-range": "A `limit` query parameter outside its documented range",
    "mandate-id-invalid": "A work's `mandate_id` is not a mandate id (1 to 64 characters)",
    "mandate-id-taken": "Another mandate was registered with this id (`jti`): sign a fresh one",
    "mandate-key-taken": "This mandate public key is already registered to another tenant",
    "mandate-keys-exceeded": "The tenant has registered the most mandate keys it may",
    "min-tier-unknown": "`min_tier` is not one of the reputation tiers",
    "not-evaluated-yet": "The work's bid window has not closed: no evaluation yet",
    "operator-credential-required": "An operator route called with a tenant or provider key",
    "owner-credential-required": "Only the resource's owner may do this",
    "provider-credential-required": "Needs the key of the provider concerned",
    "provider-mismatch": "The provider named is not the caller's",
    "receipt-not-of-contract": "A dispute's `receipt_id` is not one of the contract's receipts",
    "search-term-required": "Provider search needs a skill or a tag",
    "tenant-credential-required": "A tenant route called with the operator key (or a provider "
    "key where only a tenant key works)",
    "tenant-mismatch": "Money moves only in the caller's own wallets",
    "tenant-suspended": "The tenant is suspended: no service access",
    "token-expired": "The JWT's `exp` has passed",
    "token-invalid": "The JWT's signature, algorithm, issuer or claims are not accepted, or its "
    "minting key was revoked",
    "too-many-streams": "Over the notification streams allowed per key",
}

# What each core reason enum refuses (aex/core/reasons.py).
GROUPS: dict[str, str] = {
    "MoneyRejectReason": "A money amount or currency (any body carrying money)",
    "LifecycleRejectReason": "A state change the lifecycle does not allow",
    "DurationRejectReason": "An ISO 8601 duration (bid windows, SLAs)",
    "CriteriaRejectReason": "A work's success criteria",
    "MetricsRejectReason": "A completion's metrics",
    "WorkRejectReason": "POST /v1/work: the work spec",
    "BidSubmitRejectReason": "POST /v1/bids: the bid body",
    "BidAdmitRejectReason": "POST /v1/bids: whether the bid may enter the auction",
    "CompletionRejectReason": "POST /v1/contracts/{id}/complete",
    "DisputeRejectReason": "POST /v1/contracts/{id}/dispute: whether a dispute is allowed",
    "DisputeRequestRejectReason": "POST /v1/contracts/{id}/dispute: the body",
    "ProgressRejectReason": "POST /v1/contracts/{id}/progress",
    "ResolutionRejectReason": "POST /v1/admin/contracts/{id}/resolve",
    "BodyRejectReason": "Any JSON body",
    "TextRejectReason": "Names people read (no control or bidirectional control characters)",
    "LedgerRejectReason": "The ledger: holds, postings, balances",
    "BidRejectReason": "Evaluation: why a bid was not eligible (also in evaluation bodies)",
    "BidBatchRejectReason": "A columnar batch of bids (simulator and backtests)",
    "AgentCardRejectReason": "PUT /v1/providers/{id}/agent-card",
    "WeightsRejectReason": "Scoring weights",
    "QuotaRejectReason": "The plan's quotas",
    "CredentialRejectReason": "The credential presented",
    "ScopeRejectReason": "Scopes asked for when minting a key or a token",
    "CertRequestRejectReason": "POST /v1/certificates/request",
    "CertLifecycleRejectReason": "Certificate approve, reject, renew, revoke",
    "CertVerifyReason": "POST /v1/certificates/verify (and offline `aex verify`)",
    "EndpointRejectReason": "A provider's webhook endpoint URL",
    "MandateRejectReason": "AP2 mandates: POST /v1/mandates (the signed intent mandate), and work "
    "submitted (and awarded) under one, naming the limit it exceeds",
    "VoucherRejectReason": "The token bank: POST /v1/admin/vouchers and POST /v1/vouchers/redeem",
}


def _row(slug: str, status: int | None, meaning: str) -> str:
    return f"| `{slug}` | {status or 'varies'} | {meaning} |"


def rendered_doc() -> str:
    head = [
        "# Problem types",
        "",
        "Every 4xx and 5xx is `application/problem+json` (RFC 9457). Its `type` is",
        f"`{PROBLEM_TYPE_BASE}<slug>`: clients switch on it, never on `title` or `detail`.",
        "`errors[]` names the offending fields (`{field, reason}`), `request_id` ties the answer",
        "to the server's logs. Generated by `python -m tools.problem_types` from the code",
        "(tests/serve/test_problem_types.py checks that every type the code can emit is here).",
        "",
        "## Gateway, routes and fallbacks",
        "",
        "| slug | status | meaning |",
        "| --- | --- | --- |",
    ]
    raised = {**fallback_slugs(), **raised_slugs()}
    rows = [_row(slug, raised[slug], MEANINGS.get(slug, "")) for slug in sorted(raised)]
    body = [*head, *rows]
    for name in reasons.__all__:
        enum = getattr(reasons, name)
        if not (isinstance(enum, type) and issubclass(enum, reasons.Reason)):
            continue
        if enum is reasons.Reason:
            continue
        body += ["", f"## {GROUPS.get(name, name)}", "", f"`aex.core.{name}`", ""]
        body += ["| slug | status | meaning |", "| --- | --- | --- |"]
        for member in enum:
            meaning = member.value.replace("_", " ").capitalize()
            body.append(_row(member.value.replace("_", "-"), member.http_status, meaning))
    return "\n".join(body) + "\n"


if __name__ == "__main__":
    DOC.write_text(rendered_doc())
