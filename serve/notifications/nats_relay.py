"""The outbox relay to NATS JetStream (`AEX_NATS_URL`): rows in, persistent streams out.

Drivers write each event to an outbox row in the same transaction as the change it
announces (issue 5); this relay takes such rows, (event_id, subject, payload bytes), and
publishes each to JetStream with the `Nats-Msg-Id` header set to the event id. JetStream
drops a message whose id it has seen within the stream's duplicate window, so a relay that
dies after publishing and before marking the row sent, and publishes it again, never stores an
event twice: the retry's acknowledgement says `duplicate` and the row can be marked sent.

Streams: the spec's seven (WORK, BIDS, CONTRACTS, SETTLEMENT, CERTIFICATES, REPUTATION,
IDENTITY) and NOTIFICATIONS, the dead-letter stream ("aex.notification.dead_lettered.<provider>":
a webhook that failed every attempt, serve/notifications/webhooks.py), with the subject filters of
aex/core/events.py (`stream_subjects`), created when
missing and updated when present (`ensure_streams`). Retention is configurable: limits-based,
`max_age_s` (default 30 days), file storage, a duplicate window of `duplicate_window_s`
(default 2 minutes, JetStream's default; a relay retry must come within it).

Who may read what: the seven spec streams carry the outbox events as the exchange recorded
them, routing facts included (`recipients` of a work, `losers` of an award): they are the
operator's. The only provider subjects are "aex.notification.<...>.<provider_id>", and what
they carry about a market event is the provider's own view (aex/core/notifications.py: no
competitor, no other bid's price), so a provider's NATS user may be granted its own subjects
and nothing else (docs/market.md, "Disclosure policy").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nats
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from opentelemetry.trace import SpanKind

from serve.telemetry import tracing

STREAM_MAX_AGE_S_DEFAULT = 30 * 86_400.0
DUPLICATE_WINDOW_S_DEFAULT = 120.0
PUBLISH_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5.0
_log = logging.getLogger("aex.nats")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    event_id: str  # unique: the outbox key and the Nats-Msg-Id
    subject: str
    payload: bytes
    traceparent: str | None = None  # W3C trace context of the write: sent as a header


@dataclass(frozen=True, slots=True)
class Published:
    event_id: str
    stream: str
    sequence: int
    duplicate: bool  # JetStream had it already: a relay retry, stored once


def spec_streams(prefix: str = "") -> dict[str, tuple[str, ...]]:
    """The streams of aex/core/events.py and their subject filters; with a prefix (a
    private deployment or test) "P_WORK" on "P.aex.work.>" and so on."""
    from aex.core.events import Stream, stream_subjects  # issue 5's catalogue

    if not prefix:
        return {stream.value: stream_subjects(stream) for stream in Stream}
    return {
        f"{prefix}_{stream.value}": tuple(f"{prefix}.{s}" for s in stream_subjects(stream))
        for stream in Stream
    }


async def _log_error(error: Exception) -> None:
    _log.warning("nats: %s", type(error).__name__)


class JetStreamRelay:
    def __init__(
        self,
        url: str,
        *,
        streams: Mapping[str, Sequence[str]] | None = None,
        max_age_s: float = STREAM_MAX_AGE_S_DEFAULT,
        duplicate_window_s: float = DUPLICATE_WINDOW_S_DEFAULT,
    ) -> None:
        assert max_age_s > 0
        assert 0 < duplicate_window_s <= max_age_s
        self.url = url
        self.streams = dict(streams) if streams is not None else spec_streams()
        self.max_age_s = max_age_s
        self.duplicate_window_s = duplicate_window_s
        self._connection: Any = None
        self._jetstream: Any = None

    async def connect(self) -> JetStreamRelay:
        # No reconnection inside the client: a lost connection fails the next publish at once,
        # and the relay (serve/background.py) reconnects through its `nats` circuit breaker.
        self._connection = await asyncio.wait_for(
            nats.connect(
                self.url,
                connect_timeout=2,
                allow_reconnect=False,
                max_reconnect_attempts=0,  # one attempt: refused is a failure, not a wait
                error_cb=_log_error,
            ),
            CONNECT_TIMEOUT_S,
        )
        self._jetstream = self._connection.jetstream(timeout=PUBLISH_TIMEOUT_S)
        return self

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.drain()
            self._connection = None

    async def ensure_streams(self) -> None:
        """Creates each stream, or updates it to this configuration (idempotent)."""
        for name, subjects in self.streams.items():
            config = StreamConfig(
                name=name,
                subjects=list(subjects),
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                max_age=self.max_age_s,
                duplicate_window=self.duplicate_window_s,
            )
            try:
                await self._jetstream.stream_info(name)
            except NotFoundError:
                await self._jetstream.add_stream(config)
            else:
                await self._jetstream.update_stream(config)

    async def publish(self, rows: Sequence[OutboxRow]) -> list[Published]:
        """Publishes rows in order, each acknowledged by JetStream before the next.

        The caller marks a row sent only once it is in the returned list; a failure raises
        and leaves the rest for the next attempt (which may repeat some: deduplicated).
        """
        published = []
        for row in rows:
            # A PRODUCER span in the write's trace; the `traceparent` header continues it (the
            # stored one as it is when this process records nothing).
            with tracing.span(
                "nats.publish",
                kind=SpanKind.PRODUCER,
                parent=tracing.context_of(row.traceparent),
                attributes={"messaging.system": "nats", "messaging.destination.name": row.subject},
            ):
                headers = tracing.headers_with_trace({"Nats-Msg-Id": row.event_id}, row.traceparent)
                ack = await self._jetstream.publish(row.subject, row.payload, headers=headers)
            published.append(Published(row.event_id, ack.stream, ack.seq, bool(ack.duplicate)))
        return published

    async def stored_messages(self, stream: str) -> int:
        info = await self._jetstream.stream_info(stream)
        return int(info.state.messages)

    async def delete_stream(self, stream: str) -> None:
        await self._jetstream.delete_stream(stream)
