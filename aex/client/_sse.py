"""A server-sent events parser (the WHATWG HTML "event stream" rules), fed line by line.

Sans-I/O: `SseParser.feed_line` takes one line (without its line ending) and returns the
notifications a blank line completes; the clients own the connection. `data` lines join with
"\\n"; comment lines (":") and unknown fields are ignored; an `id` with a NUL is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# One event's data: an exchange notification is a few KB; 1 MiB is a misbehaving server.
EVENT_DATA_CHARS_MAX = 1 << 20


@dataclass(frozen=True, slots=True)
class Notification:
    """One server-sent event: its id (for Last-Event-ID), event name and data text."""

    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseParser:
    _data: list[str] = field(default_factory=list)
    _event: str = ""
    _id: str | None = None
    _size: int = 0

    def feed_line(self, line: str) -> list[Notification]:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return []
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._size += len(value) + 1
            if self._size > EVENT_DATA_CHARS_MAX:
                raise ValueError("a server-sent event over EVENT_DATA_CHARS_MAX")
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\x00" not in value:
            self._id = value
        return []

    def _dispatch(self) -> list[Notification]:
        if not self._data:
            self._event = ""
            return []
        notification = Notification(self._id, self._event or "message", "\n".join(self._data))
        self._data, self._event, self._size = [], "", 0
        return [notification]
