# Rule: the bytes that an AEX signature covers are decided here and only here (RFC 8785, JCS).
#
# Theory of operation: every signed AEX document (certificate, certificate request, CRL) is
# signed over its RFC 8785 canonical form. The `rfc8785` package (Trail of Bits) is the
# reference implementation; it is pure Python and costs ~100 µs for one certificate, as much as
# the ECDSA verification itself. For the documents AEX signs, JCS coincides with msgspec's
# compact encoder with sorted keys (`msgspec.json.encode(doc, order="sorted")`, ~2 µs for a
# certificate, ten times CPython's json module):
#   - strings: ECMAScript's JSON.stringify and msgspec both emit \" \\ \b \f \n \r \t
#     in short form, every other C0 control as \u00xx with lowercase hex, and every other code
#     point literally as UTF-8 (U+007F, U+2028 and U+2029 included); a lone surrogate makes the
#     UTF-8 encode fail and falls through to the reference;
#   - member order: JCS sorts by UTF-16 code units, msgspec by code points; the two agree on
#     ASCII keys, and every key is checked to be ASCII;
#   - numbers: integers with |n| < 2^53 print alike; floats, which differ (1e21 vs 1e+21),
#     send the document to the reference.
# `canonical_json` takes the fast path only when a bounded walk proves the document is in that
# subset; tests/core/test_jcs.py checks byte equality with `rfc8785.dumps` under hypothesis.
from __future__ import annotations

from typing import Any, Final

import msgspec
import rfc8785

from aex.core import limits

__all__ = ["CanonicalizationError", "canonical_json"]

# JCS (I-JSON, RFC 7493) integers: exactly representable as an IEEE 754 double.
_INT_SAFE_MAX: Final = 2**53 - 1

CanonicalizationError = rfc8785.CanonicalizationError
# One encoder, built once; `order="sorted"` sorts every object's keys.
_ENCODER: Final = msgspec.json.Encoder(order="sorted")


def canonical_json(document: Any, *, shape_checked: bool = False) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value (dicts, lists, str, int, bool, None).

    Args:
        document: the JSON value.
        shape_checked: the caller's parser has already proven that every key is ASCII and
            every number an int below 2^53 (aex/core/certs.py does, for a certificate): skip
            the walk that proves it here (~7 µs per certificate on the verification path).

    Raises:
        CanonicalizationError: when the value has no JCS form (an integer beyond 2^53 - 1, a NaN,
            a lone surrogate); signed AEX documents carry such values as strings.
    """
    if shape_checked or _is_plain(document):
        try:
            return _ENCODER.encode(document)
        except UnicodeEncodeError:
            pass
    return rfc8785.dumps(document)


# True when every key is an ASCII str, every number an int within the safe range, and the
# document has at most `canonical_json_nodes_max` nodes (no recursion: an explicit stack).
def _is_plain(document: Any) -> bool:
    stack = [document]
    for _ in range(limits.canonical_json_nodes_max):
        if not stack:
            return True
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key, child in item.items():
                if type(key) is not str or not key.isascii():
                    return False
                stack.append(child)
        elif kind is list:
            stack.extend(item)
        elif kind is int:
            if not -_INT_SAFE_MAX <= item <= _INT_SAFE_MAX:
                return False
        elif kind is not str and kind is not bool and item is not None:
            return False
    return not stack
