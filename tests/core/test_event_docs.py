"""docs/api.md "## Events" lists every event type the exchange emits, each once, in its stream."""

from __future__ import annotations

import re
from pathlib import Path

from aex.core.events import EVENT_STREAMS, EventType

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_the_api_doc_lists_every_event_type_with_its_stream() -> None:
    text = API_DOC.read_text(encoding="utf-8")
    section = text.split("\n## Events\n", 1)[1].split("\n## ", 1)[0]
    listed = dict(re.findall(r"^\| `([a-z_.]+)` \| ([A-Z]+) \|", section, flags=re.MULTILINE))
    assert listed == {event.value: EVENT_STREAMS[event].value for event in EventType}
