# Rule: how a certificate's revocation is published for W3C verifiers (the Bitstring Status List
# v1.0 entry a VC-JWT carries, the bitstring's encoding, the status list credential) is decided
# here and only here.
#
# Theory of operation (W3C "Bitstring Status List v1.0", Recommendation 2025):
#   - Each certificate record gets one index when first issued (drawn by the driver, never
#     reused); every serial of the record shares it, as revocation revokes them all.
#   - A list holds `limits.status_list_entries` (131,072) bits, the spec's minimum for group
#     privacy; index i is bit i % 131,072 of list i // 131,072. Bit 0 is the left-most (most
#     significant) bit of the first byte (§4.1 "the left-most bit in the bitstring").
#   - encodedList is the multibase base64url ("u" prefix, no padding) of the GZIP-compressed
#     bitstring (§4.1). GZIP's header time is 0, so encoding is a pure function of the bits.
#   - The status list credential is a VC-JWT signed by the CA key (the same JOSE form as
#     certificate exports, aex/core/x509_export.py), valid for a day like the CRL.
from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from aex.core import limits
from aex.core.certs import Signer, b64url_decode, b64url_encode, format_time
from aex.core.x509_export import sign_vc_jwt

__all__ = [
    "STATUS_PURPOSE",
    "decode_status_list",
    "encode_status_list",
    "status_entry",
    "status_list_credential",
    "status_list_of",
    "status_of",
]

STATUS_PURPOSE: Final = "revocation"
_BYTES: Final = limits.status_list_entries // 8
assert limits.status_list_entries % 8 == 0


def status_list_of(index: int) -> tuple[int, int]:
    """(list number, bit within the list) of a certificate's status index."""
    assert type(index) is int
    assert index >= 0
    return divmod(index, limits.status_list_entries)


def status_entry(list_url: str, index: int) -> dict[str, str]:
    """The VC's `credentialStatus`: a BitstringStatusListEntry (§2.1; the index a string)."""
    _, bit = status_list_of(index)
    return {
        "id": f"{list_url}#{bit}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": STATUS_PURPOSE,
        "statusListIndex": str(bit),
        "statusListCredential": list_url,
    }


def encode_status_list(revoked_bits: Iterable[int]) -> str:
    """The encodedList of one list whose `revoked_bits` (0 ≤ bit < 131,072) are set."""
    bits = bytearray(_BYTES)
    for bit in revoked_bits:
        assert 0 <= bit < limits.status_list_entries
        bits[bit // 8] |= 0x80 >> (bit % 8)
    return "u" + b64url_encode(gzip.compress(bytes(bits), mtime=0))


def decode_status_list(encoded: Any) -> bytes | None:
    """The bitstring of an encodedList, or None unless it is one list of exactly 16 KB."""
    if type(encoded) is not str or not encoded.startswith("u"):
        return None
    packed = b64url_decode(encoded[1:])
    if packed is None:
        return None
    inflater = zlib.decompressobj(wbits=31)  # 31: a GZIP member
    try:
        bits = inflater.decompress(packed, _BYTES + 1)  # bounded: a zip bomb stops here
    except zlib.error:
        return None
    return bits if len(bits) == _BYTES and inflater.eof else None


def status_of(bits: bytes, bit: int) -> bool:
    """True when `bit` is set (the credential is revoked)."""
    assert len(bits) == _BYTES
    assert 0 <= bit < limits.status_list_entries
    return bool(bits[bit // 8] & (0x80 >> (bit % 8)))


def status_list_credential(
    list_url: str,
    *,
    revoked_bits: Iterable[int],
    issuer: str,
    valid_from: datetime,
    valid_until: datetime,
    signer: Signer,
) -> str:
    """The BitstringStatusListCredential (§2.2) as a VC-JWT signed by the CA key."""
    assert valid_from < valid_until
    payload = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": list_url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer,
        "validFrom": format_time(valid_from),
        "validUntil": format_time(valid_until),
        "credentialSubject": {
            "id": f"{list_url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": STATUS_PURPOSE,
            "encodedList": encode_status_list(revoked_bits),
        },
        "iss": issuer,
        "jti": list_url,
        "iat": int(valid_from.timestamp()),
        "nbf": int(valid_from.timestamp()),
        "exp": int(valid_until.timestamp()),
    }
    return sign_vc_jwt(payload, signer=signer)
