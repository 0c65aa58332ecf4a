"""Traces (serve/telemetry/tracing.py): one trace from the HTTP request through the market use case
and its database transaction to the outbox, NATS JetStream and the webhook call.

The exchange runs in this process (create_app under uvicorn, on a thread) so that the SDK's
in-memory exporter sees its spans; everything else is real: SQLite, HTTP over loopback, a
local webhook receiver, the local NATS server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from serve.app import create_app
from serve.settings import Settings
from serve.stores.market_db import open_market_db
from serve.telemetry import tracing
from tests.serve.market_helpers import Provider, bid, consumer, hooked_provider, provider, work_body
from tests.serve.server import TEST_ENV, in_process
from tests.serve.webhook_receiver import Receiver

NATS_URL = os.environ.get("AEX_TEST_NATS_URL", "nats://127.0.0.1:4222")


@dataclass
class Traced:
    url: str
    data_dir: Path
    exporter: InMemorySpanExporter

    def spans(self, trace_id: str) -> list[ReadableSpan]:
        return [
            span
            for span in self.exporter.get_finished_spans()
            if span.context is not None and format(span.context.trace_id, "032x") == trace_id
        ]

    def wait_for_span(self, trace_id: str, name: str, timeout_s: float = 15) -> ReadableSpan:
        deadline = time.monotonic() + timeout_s
        while True:
            found = [span for span in self.spans(trace_id) if span.name == name]
            if found:
                return found[0]
            assert time.monotonic() < deadline, [s.name for s in self.spans(trace_id)]
            time.sleep(0.05)


@contextlib.contextmanager
def traced_exchange(tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[Traced]:
    exporter = InMemorySpanExporter()
    provider_ = TracerProvider()
    provider_.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider_)
    data_dir = tmp_path / "data"
    settings = Settings.from_env(data_dir=data_dir, env={**TEST_ENV, **(env or {})})
    try:
        with in_process(create_app(settings)) as url:
            yield Traced(url, data_dir, exporter)
    finally:
        tracing.use_provider(None)


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    # One exchange for the tests below (each looks only at the spans of its own traces).
    with traced_exchange(tmp_path_factory.mktemp("traced")) as running:
        yield running


@pytest.fixture
def client(exchange: Traced) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=exchange.url, timeout=30) as http:
        yield http


def new_trace() -> tuple[str, dict[str, str]]:
    """A caller's trace: its id and the `traceparent` header that starts it (sampled)."""
    trace_id, parent_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return trace_id, {"traceparent": f"00-{trace_id}-{parent_span}-01"}


def trace_id_of(traceparent: str) -> str:
    version, trace_id, span_id, flags = traceparent.split("-")
    assert (version, len(span_id), len(flags)) == ("00", 16, 2)
    return trace_id


def chain(exchange: Traced, trace_id: str, use_case: str) -> dict[str, ReadableSpan]:
    """The request's spans in this trace: the HTTP span, the use case inside it, and the
    database transaction inside the use case (each the parent of the next)."""
    spans = exchange.spans(trace_id)
    http = [s for s in spans if s.kind is SpanKind.SERVER]
    case = [s for s in spans if s.name == use_case]
    db = [s for s in spans if s.name == "db.transaction"]
    assert (len(http), len(case), bool(db)) == (1, 1, True), [s.name for s in spans]
    assert case[0].parent is not None
    assert case[0].parent.span_id == http[0].context.span_id
    inside = [s for s in db if s.parent is not None and s.parent.span_id == case[0].context.span_id]
    assert inside, "no database transaction span under the use case"
    return {"http": http[0], "use_case": case[0], "db": inside[0]}


def test_posting_work_and_a_bid_traces_the_request_the_use_case_and_the_transaction(
    exchange: Traced, client: httpx.Client
) -> None:
    buyer, agent = consumer(client), provider(client)
    work_trace, traceparent = new_trace()
    headers = {**buyer.headers, **traceparent}
    response = client.post("/v1/work", json=_work(), headers=headers)
    assert response.status_code == 201, response.text
    work_id = response.json()["work_id"]
    bid_trace, traceparent = new_trace()
    body = {**bid_body(agent, work_id)}
    placed = client.post("/v1/bids", json=body, headers={**agent.headers, **traceparent})
    assert placed.status_code == 201, placed.text
    spans = chain(exchange, work_trace, "market.submit_work")
    assert spans["http"].name == "POST /v1/work"
    assert spans["http"].attributes is not None
    assert spans["http"].attributes["http.response.status_code"] == 201
    assert spans["db"].attributes is not None
    assert spans["db"].attributes["db.system"] == "sqlite"
    bid_spans = chain(exchange, bid_trace, "market.submit_bid")
    assert bid_spans["http"].name == "POST /v1/bids"
    # A request sent with no trace context starts a trace of its own.
    untraced = bid(client, provider(client), work_id, price=90)
    assert untraced.status_code == 201, untraced.text
    roots = [
        s
        for s in exchange.exporter.get_finished_spans()
        if s.name == "POST /v1/bids" and s.parent is None
    ]
    assert len(roots) == 1
    assert format(roots[0].context.trace_id, "032x") not in (work_trace, bid_trace)


def test_an_outbox_event_carries_the_trace_context_of_the_write_that_recorded_it(
    exchange: Traced, client: httpx.Client
) -> None:
    buyer = consumer(client)
    trace_id, traceparent = new_trace()
    response = client.post("/v1/work", json=_work(), headers={**buyer.headers, **traceparent})
    assert response.status_code == 201, response.text
    work_id = response.json()["work_id"]
    db_span = chain(exchange, trace_id, "market.submit_work")["db"]
    market = open_market_db(exchange.data_dir, {})
    rows = market.read(
        "SELECT traceparent FROM outbox WHERE type = 'work.submitted' AND subject_id = ?",
        (work_id,),
    )
    assert len(rows) == 1
    assert rows[0][0] == f"00-{trace_id}-{format(db_span.context.span_id, '016x')}-01"


def test_a_webhook_call_carries_the_traceparent_of_the_request_that_caused_it(
    exchange: Traced, client: httpx.Client
) -> None:
    receiver = Receiver()
    try:
        hooked_provider(client, receiver.url, name="TracedBot")
        buyer = consumer(client)
        trace_id, traceparent = new_trace()
        response = client.post(
            "/v1/work", json=_work(bid_window_seconds=300), headers={**buyer.headers, **traceparent}
        )
        assert response.status_code == 201, response.text
        deadline = time.monotonic() + 15
        while not receiver.received:
            assert time.monotonic() < deadline, "no webhook delivered"
            time.sleep(0.05)
        headers, _ = receiver.received[0]
        assert headers["x-aex-event"] == "work.submitted"
        assert trace_id_of(headers["traceparent"]) == trace_id
        delivery = exchange.wait_for_span(trace_id, "webhook.deliver")
        assert delivery.kind is SpanKind.CLIENT
        assert headers["traceparent"].split("-")[2] == format(delivery.context.span_id, "016x")
        http = [s for s in exchange.spans(trace_id) if s.kind is SpanKind.SERVER]
        assert len(http) == 1  # the one request the webhook's trace began with
    finally:
        receiver.stop()


@pytest.mark.services
def test_the_nats_relay_sends_the_trace_context_as_a_message_header(tmp_path: Path) -> None:
    prefix = f"aextrace{uuid.uuid4().hex[:10]}"
    env = {"AEX_NATS_URL": NATS_URL, "AEX_NATS_PREFIX": prefix}
    try:
        with (
            traced_exchange(tmp_path, env) as exchange,
            httpx.Client(base_url=exchange.url, timeout=30) as client,
        ):
            buyer = consumer(client)
            trace_id, traceparent = new_trace()
            response = client.post(
                "/v1/work", json=_work(), headers={**buyer.headers, **traceparent}
            )
            assert response.status_code == 201, response.text
            work_id = response.json()["work_id"]
            publish = exchange.wait_for_span(trace_id, "nats.publish")
            assert publish.kind is SpanKind.PRODUCER
            headers = asyncio.run(_stored_headers(f"{prefix}_WORK", work_id))
            assert trace_id_of(headers["traceparent"]) == trace_id
            assert headers["traceparent"].split("-")[2] == format(publish.context.span_id, "016x")
    finally:
        asyncio.run(_delete_streams(prefix))


async def _stored_headers(stream: str, work_id: str) -> dict[str, str]:
    import nats

    connection = await nats.connect(NATS_URL, connect_timeout=2)
    try:
        js = connection.jetstream()
        info = await js.stream_info(stream)
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(stream, seq)
            if message.data is not None and work_id.encode() in message.data:
                return dict(message.headers or {})
        raise AssertionError(f"no message about {work_id} in {stream}")
    finally:
        await connection.close()


async def _delete_streams(prefix: str) -> None:
    import nats
    from nats.js.errors import NotFoundError

    from serve.notifications.nats_relay import spec_streams

    connection = await nats.connect(NATS_URL, connect_timeout=2)
    try:
        js = connection.jetstream()
        for stream in spec_streams(prefix):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(stream)
    finally:
        await connection.close()


def _work(**changes: Any) -> dict[str, Any]:
    return work_body(**changes)


def bid_body(agent: Provider, work_id: str) -> dict[str, Any]:
    return {
        "work_id": work_id,
        "provider_id": agent.provider_id,
        "price": 100,
        "confidence": 0.95,
        "estimated_duration": "2h",
        "sla": {"max_turnaround": "4h"},
    }
