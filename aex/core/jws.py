# Rule: a compact JWS is its canonical header and payload, base64url, signed by the key passed in.
"""Compact JWS (RFC 7515) over canonical JSON, as the exchange's ES256 documents use it:
resale delegations (aex/core/delegation.py), AP2 mandates and receipts (aex/core/mandates.py).

Pure: the signer is passed in; header and payload are serialised with RFC 8785 (JCS), so the
same document always signs to the same bytes.
"""

from __future__ import annotations

import json
from typing import Any

from aex.core.certs import Signer, b64url_decode, b64url_encode
from aex.core.jcs import canonical_json

__all__ = ["json_part", "sign_compact"]


def sign_compact(header: dict[str, Any], payload: dict[str, Any], signer: Signer) -> str:
    """`<header>.<payload>.<signature>`, each base64url, the signature over the first two."""
    signing_input = (
        f"{b64url_encode(canonical_json(header))}.{b64url_encode(canonical_json(payload))}"
    )
    return f"{signing_input}.{b64url_encode(signer.sign(signing_input.encode('ascii')))}"


def json_part(text: str) -> Any:
    """A base64url JSON part of a compact JWS, or None when it is not one."""
    raw = b64url_decode(text)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
