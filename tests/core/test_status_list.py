"""The Bitstring Status List (aex/core/status_list.py): encoding, bit order, the credential."""

from __future__ import annotations

import base64
import gzip

from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey

from aex.core import limits
from aex.core.certs import public_key_to_jwk
from aex.core.status_list import (
    decode_status_list,
    encode_status_list,
    status_entry,
    status_list_credential,
    status_list_of,
    status_of,
)
from tests.ca.factory import CA, NOW, VALIDITY

BITS = st.sets(st.integers(0, limits.status_list_entries - 1), max_size=64)


@given(BITS)
def test_decoding_returns_exactly_the_revoked_bits(revoked: set[int]) -> None:
    bits = decode_status_list(encode_status_list(revoked))
    assert bits is not None
    assert len(bits) == 16_384  # the spec's minimum: 131,072 entries
    for bit in [*revoked, 0, 1, limits.status_list_entries - 1]:
        assert status_of(bits, bit) is (bit in revoked)


def test_bit_zero_is_the_left_most_bit_and_the_encoding_is_multibase_gzip() -> None:
    encoded = encode_status_list([0, 9])
    assert encoded.startswith("u")
    raw = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    assert raw[0] == 0b1000_0000
    assert raw[1] == 0b0100_0000
    assert encode_status_list([0, 9]) == encoded  # deterministic (GZIP mtime 0)


def test_a_list_of_another_size_or_encoding_is_refused() -> None:
    small = "u" + base64.urlsafe_b64encode(gzip.compress(bytes(16))).decode().rstrip("=")
    assert decode_status_list(small) is None
    assert decode_status_list(encode_status_list([])[1:]) is None  # no multibase prefix
    assert decode_status_list(42) is None


def test_an_index_past_one_list_lives_in_the_next() -> None:
    assert status_list_of(limits.status_list_entries + 5) == (1, 5)
    entry = status_entry("https://x/v1/status-lists/1", limits.status_list_entries + 5)
    assert entry["statusListIndex"] == "5"
    assert entry["type"] == "BitstringStatusListEntry"
    assert entry["statusPurpose"] == "revocation"


def test_the_status_list_credential_verifies_with_joserfc() -> None:
    url = "https://x/v1/status-lists/0"
    token = status_list_credential(
        url,
        revoked_bits=[3],
        issuer="https://x/ca",
        valid_from=NOW,
        valid_until=NOW + VALIDITY,
        signer=CA,
    )
    key = ECKey.import_key({**public_key_to_jwk(CA.public_key), "kid": CA.kid})
    decoded = jwt.decode(token, key, algorithms=["ES256"])
    subject = decoded.claims["credentialSubject"]
    assert decoded.claims["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert subject["type"] == "BitstringStatusList"
    bits = decode_status_list(subject["encodedList"])
    assert bits is not None
    assert status_of(bits, 3)
    assert not status_of(bits, 2)
