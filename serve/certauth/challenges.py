"""IDENTITY challenges' I/O: fetching `/.well-known/aex-challenge/{token}` from the agent.

The rule (what is fetched, what proves control) is aex/core/challenge.py. The fetch goes
through the webhooks' SSRF guard (serve/notifications/endpoints.py `EndpointPolicy.pin`: every
address the host resolves to must be admitted, then the connection is made to the checked address
only, with the name in the Host header and TLS SNI), so a challenge can reach nothing a webhook
could not. Bounded: one GET, `CHALLENGE_TIMEOUT_S` for connect and each read, no redirects (RFC 8555
follows them; the exchange does not, so a redirect cannot lead the fetch past the guard), no
environment proxy, at most `limits.challenge_response_bytes_max` + 1 bytes read.
"""

from __future__ import annotations

import httpx

from aex.core import limits
from serve.notifications.endpoints import EndpointPolicy
from serve.notifications.webhooks import _TLS, coarse_error

CHALLENGE_TIMEOUT_S = 5.0


def fetch_challenge(policy: EndpointPolicy, url: str) -> tuple[int, bytes] | str:
    """(HTTP status, body up to the limit + 1 byte), or a coarse error: "endpoint_invalid",
    "dns_failed", "address_refused" (no connection was made), "connect_failed", "timeout",
    "request_failed"."""
    pinned = policy.pin(url)
    if isinstance(pinned, str):
        return pinned
    body_max = limits.challenge_response_bytes_max + 1
    try:
        with (
            httpx.Client(
                timeout=CHALLENGE_TIMEOUT_S, verify=_TLS, trust_env=False, follow_redirects=False
            ) as http,
            http.stream(
                "GET",
                pinned.url,
                headers={"host": pinned.endpoint.host_header, "accept": "text/plain"},
                extensions={"sni_hostname": pinned.endpoint.host},
            ) as response,
        ):
            body = b""
            for chunk in response.iter_raw():
                body += chunk
                if len(body) >= body_max:
                    break
            return response.status_code, body[:body_max]
    except httpx.HTTPError as failure:
        return coarse_error(failure)
