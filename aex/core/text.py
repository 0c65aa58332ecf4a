# Rule: which characters a name people read may hold is decided here and only here.
#
# Theory of operation: tenant, provider and agent names, work titles and review notes are shown
# to other people (dashboards, certificates, X.509 common names, logs). Two kinds of character
# make such a name unsafe: C0 and C1 control characters (NUL included, which PostgreSQL text
# cannot store and C strings end at; newlines that forge log and CSV lines), and the Unicode
# bidirectional embedding, override and isolate controls U+202A..U+202E and U+2066..U+2069,
# which make a displayed name read differently from its bytes ("Trojan Source",
# CVE-2021-42574; Unicode TR #36 section 2.3). Everything else, other scripts, emoji and their
# joiners (U+200D), is a name. The check is one regular-expression search: linear, no loop.
from __future__ import annotations

import re
from typing import Final

from aex.core.reasons import Rejected, TextRejectReason

__all__ = ["BIDI_CONTROLS", "check_display_text"]

# LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI.
BIDI_CONTROLS: Final = frozenset(
    [chr(code) for code in range(0x202A, 0x202F)] + [chr(code) for code in range(0x2066, 0x206A)]
)
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]")
_PROSE_CONTROL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # not \t \n \r
_BIDI: Final = re.compile("[\u202a-\u202e\u2066-\u2069]")
assert len(BIDI_CONTROLS) == 9
assert all(_BIDI.fullmatch(character) for character in BIDI_CONTROLS)


def check_display_text(
    value: str, *, field: str, multiline: bool = False
) -> Rejected[TextRejectReason] | None:
    """Refuses a name that holds a control or a bidirectional control character.

    Args:
        value: the decoded text (its length is the caller's limit, checked before).
        field: the field to name in the rejection ("name", "title", "note").
        multiline: prose (a dispute's reason) may hold tabs and line breaks; names may not.

    Returns:
        None when the text is safe to show, else TEXT_CONTROL_CHARACTER (checked first) or
        TEXT_BIDI_CONTROL, naming `field` and the offending code point.
    """
    control = (_PROSE_CONTROL if multiline else _CONTROL).search(value)
    if control is not None:
        return Rejected(
            TextRejectReason.TEXT_CONTROL_CHARACTER,
            field,
            f"U+{ord(control.group()):04X} (a control character) is not allowed",
        )
    bidi = _BIDI.search(value)
    if bidi is not None:
        assert bidi.group() in BIDI_CONTROLS
        return Rejected(
            TextRejectReason.TEXT_BIDI_CONTROL,
            field,
            f"U+{ord(bidi.group()):04X} (a bidirectional control) is not allowed",
        )
    return None
