# Rule: how a webhook delivery is signed and how a receiver checks it is decided here and only
# here; the exchange's deliveries (serve/notifications/webhooks.py) and the SDK's receivers
# (aex/client) both call these two functions.
#
# Theory of operation (after Stripe's and Standard Webhooks' schemes): the signature is
# `sha256=` + hex HMAC-SHA256, keyed with the provider's webhook secret, over
# `<timestamp>.<body>`, the timestamp being Unix seconds of the attempt (`X-AEX-Timestamp`).
# Signing the timestamp with the body lets a receiver refuse a replay older than
# WEBHOOK_REPLAY_WINDOW_S; the comparison is constant-time.
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Final

__all__ = [
    "WEBHOOK_REPLAY_WINDOW_S",
    "verify_webhook_signature",
    "webhook_signature",
]

# A delivery signed more than 5 minutes from the receiver's clock is refused (a replay, or a
# clock that is off by more than any NTP-synchronised host drifts).
WEBHOOK_REPLAY_WINDOW_S: Final = 300


def webhook_signature(webhook_secret: str, timestamp_s: int, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`, the X-AEX-Signature value."""
    assert webhook_secret, "a signature needs a secret"
    mac = hmac.new(webhook_secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_webhook_signature(
    webhook_secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now_s: int,
    tolerance_s: int = WEBHOOK_REPLAY_WINDOW_S,
) -> bool:
    """The receiver's check: a fresh `X-AEX-Timestamp` and a matching `X-AEX-Signature`.

    Args:
        headers: the delivery's headers, with lower-case names (as httpx and ASGI give them).
        now_s: the receiver's clock, Unix seconds.
    """
    assert tolerance_s >= 0
    try:
        timestamp_s = int(headers["x-aex-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs(now_s - timestamp_s) > tolerance_s:
        return False
    expected = webhook_signature(webhook_secret, timestamp_s, body)
    return hmac.compare_digest(expected, headers.get("x-aex-signature", ""))
