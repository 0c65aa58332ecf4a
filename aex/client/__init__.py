"""The AEX Python SDK: the exchange's routes as typed methods, and its checks offline.

    from aex.client import Client
    with Client("http://127.0.0.1:8080", api_key=KEY) as aex:
        aex.deposit(tenant_id, "100.00")
        work = aex.submit_work(title="Review", category="TECHNOLOGY", budget_max="200")

`Client` and `AsyncClient` send an Idempotency-Key with every write and retry safely;
`Client.notifications()` iterates a provider's server-sent events and resumes with
Last-Event-ID. `verify_webhook` checks a webhook delivery's signature; `verify_certificate`
checks an AEX certificate offline against the CA document and a CRL, as `aex verify` does.
Needs only httpx and the pure core (numpy, cryptography): no server, no workbench.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aex.client._client import AsyncClient, Client, ProblemError
from aex.client._sse import Notification
from aex.core.certs import Verified, verify_offline
from aex.core.reasons import CertVerifyReason, Rejected
from aex.core.webhook_signing import WEBHOOK_REPLAY_WINDOW_S, verify_webhook_signature

__all__ = [
    "AsyncClient",
    "Client",
    "Notification",
    "ProblemError",
    "verify_certificate",
    "verify_webhook",
]


def verify_webhook(
    webhook_secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now_s: int | None = None,
    tolerance_s: int = WEBHOOK_REPLAY_WINDOW_S,
) -> bool:
    """Whether a webhook delivery is from the exchange: its X-AEX-Signature matches the body
    and its X-AEX-Timestamp is within `tolerance_s` of now. Header names in any case."""
    lowered = {name.lower(): value for name, value in headers.items()}
    now = int(datetime.now(UTC).timestamp()) if now_s is None else now_s
    return verify_webhook_signature(
        webhook_secret, lowered, body, now_s=now, tolerance_s=tolerance_s
    )


def verify_certificate(
    certificate: Any,
    ca_document: Any,
    *,
    crl: Any = None,
    at: datetime | None = None,
) -> Verified | Rejected[CertVerifyReason]:
    """Verifies an AEX certificate offline: signature against the CA document's keys,
    validity period at `at` (default now), revocation against the CRL when given."""
    return verify_offline(certificate, ca_document, now=at or datetime.now(UTC), crl_document=crl)
