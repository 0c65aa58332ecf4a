"""A work matching more subscribers than one event may name (limits.work_recipients_per_event_max)
is announced in several `work.submitted` events, each naming a slice: every subscriber is told
exactly once, no event outgrows its payload bound, and the request answers 201 (it was a 500
beyond ~44,000 subscribers: docs/performance.md "Cost curves", finding 3). In process, on
SQLite, with the bound lowered so that a handful of providers cross it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from litestar.testing import TestClient

from aex.core import limits
from aex.core.notifications import provider_notification
from serve.app import create_app
from serve.settings import Settings
from serve.stores.market_db import open_market_db
from tests.serve.market_helpers import consumer, provider, submit_work
from tests.serve.server import TEST_ENV


@pytest.mark.parametrize(("per_event", "subscribers", "events"), [(2, 5, 3), (5, 5, 1)])
def test_each_subscriber_is_told_of_a_work_once_across_its_announcements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_event: int, subscribers: int, events: int
) -> None:
    monkeypatch.setattr(limits, "work_recipients_per_event_max", per_event)
    settings = Settings.from_env(data_dir=tmp_path / "data", env=dict(TEST_ENV))
    with TestClient(app=create_app(settings), timeout=30) as client:
        subscribed = {provider(client).provider_id for _ in range(subscribers)}
        work = submit_work(client, consumer(client))
    rows = open_market_db(tmp_path / "data", {}).read(
        "SELECT payload FROM outbox WHERE type = 'work.submitted' AND subject_id = ? ORDER BY seq",
        (work["work_id"],),
    )
    payloads = [json.loads(row[0]) for row in rows]
    assert len(payloads) == events
    assert all(len(p["recipients"]) <= per_event for p in payloads)
    if events > 1:
        assert [p["recipients_part"] for p in payloads] == list(range(events))
        assert {p["recipients_parts"] for p in payloads} == {events}
    else:
        assert "recipients_part" not in payloads[0]
    told = Counter(
        provider_id
        for p in payloads
        for provider_id in subscribed
        if provider_notification(provider_id, "work.submitted", work["work_id"], p) is not None
    )
    assert told == dict.fromkeys(subscribed, 1)
