"""aex/core/text.py: names people read hold no control and no bidirectional control."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aex.core.reasons import TextRejectReason
from aex.core.text import BIDI_CONTROLS, check_display_text


@pytest.mark.parametrize(
    "name",
    [
        "Acme Corp",
        "CodeReviewBot",
        "Zürich AG",
        "東京エージェント",
        "وكيل",
        "👩\u200d💻 Team",
        "a-b_c.d",
    ],
)
def test_names_in_any_script_are_accepted(name: str) -> None:
    assert check_display_text(name, field="name") is None


@pytest.mark.parametrize("control", ["\x00", "\x07", "\n", "\r", "\x1b", "\x7f", "\x85", "\x9f"])
def test_control_characters_are_refused_naming_the_field(control: str) -> None:
    rejected = check_display_text(f"Acme{control}Corp", field="name")
    assert rejected is not None
    assert (rejected.reason, rejected.field) == (TextRejectReason.TEXT_CONTROL_CHARACTER, "name")
    assert f"U+{ord(control):04X}" in rejected.detail


def test_the_nine_bidi_controls_are_refused() -> None:
    assert {f"U+{ord(c):04X}" for c in BIDI_CONTROLS} == {
        *(f"U+{code:04X}" for code in range(0x202A, 0x202F)),
        *(f"U+{code:04X}" for code in range(0x2066, 0x206A)),
    }
    for control in sorted(BIDI_CONTROLS):
        rejected = check_display_text(f"invoice{control}fdp.exe", field="title")
        assert rejected is not None
        assert (rejected.reason, rejected.field) == (TextRejectReason.TEXT_BIDI_CONTROL, "title")


@given(
    prefix=st.text(max_size=20),
    control=st.sampled_from(sorted(BIDI_CONTROLS)) | st.characters(max_codepoint=0x1F),
    suffix=st.text(max_size=20),
)
def test_an_unsafe_character_anywhere_is_refused(prefix: str, control: str, suffix: str) -> None:
    assert check_display_text(prefix + control + suffix, field="name") is not None


def test_a_control_is_reported_before_a_bidi_control() -> None:
    rejected = check_display_text("\u202eA\x00", field="name")
    assert rejected is not None
    assert rejected.reason is TextRejectReason.TEXT_CONTROL_CHARACTER


def test_prose_may_break_lines_but_holds_no_other_control() -> None:
    assert (
        check_display_text("line one\nline two\r\n\tindented", field="reason", multiline=True)
        is None
    )
    assert check_display_text("a\nb", field="name") is not None
    for unsafe in ("\x00", "\x1b", "\x0b", "\u202e", "\u2069"):
        assert check_display_text(f"a{unsafe}b", field="reason", multiline=True) is not None
