"""OpenTelemetry traces: the HTTP request, the use case, the database transaction, the outbox.

One trace runs from an HTTP request to the webhook call its event causes: the request's span
(`RequestSpan`, opened by the gateway; the W3C `traceparent` it was sent honoured as the
parent), a span per market use case (`traced`, serve/market/usecases.py), a span per database
transaction (the drivers of serve/stores/market_db.py), and the transaction's outbox rows carry
the trace context (`current_traceparent`, the outbox's `traceparent` column), so the relay to
NATS JetStream sends it as a message header and the webhook delivery as a `traceparent` request
header, each in a span of that trace.

Cost: until a provider is installed the tracer is OpenTelemetry's no-op tracer (no span, no
context stored with an event: an app built in a test or a script). The server installs one per
process (`configure_from_env`, from `aex serve` and the worker factory): with
OTEL_EXPORTER_OTLP_ENDPOINT set, a batch span processor and the OTLP/HTTP exporter (which reads
the standard OTEL_EXPORTER_OTLP_* variables itself); without it, a tracer whose spans are
non-recording (`_IdsOnlyTracer`: ids only, nothing kept or sent, what an ALWAYS_OFF sampler
gives, without the SDK) while the logs still carry a trace id. Tests install a provider
with an in-memory exporter (`use_provider`). aex/core never traces: it stays pure.
"""

from __future__ import annotations

import functools
import inspect
import os
import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    NonRecordingSpan,
    NoOpTracer,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import aex
from serve.gateway.asgi import Scope, header
from serve.gateway.problems import REQUEST_ID_SCOPE_KEY

F = TypeVar("F", bound=Callable[..., Any])
TRACER_NAME = "aex.serve"
OTLP_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
_PROPAGATOR = TraceContextTextMapPropagator()
_NO_OP = NoOpTracer()


class _IdsOnlyTracer(NoOpTracer):
    """What a provider that samples nothing does, without the SDK: every span non-recording,
    with a new span id in its parent's trace (or a new trace). The server's tracer when it
    exports nothing: ids for the logs, the outbox and the `traceparent` sent on, at a tenth of
    the SDK's cost per span (its sampler, attributes and span processor are never used then)."""

    def start_span(self, name: str, context: Any = None, *args: Any, **kwargs: Any) -> Span:
        parent = trace.get_current_span(context).get_span_context()
        trace_id = parent.trace_id if parent.is_valid else random.getrandbits(128) or 1
        return NonRecordingSpan(
            SpanContext(
                trace_id,
                random.getrandbits(64) or 1,
                is_remote=False,
                trace_flags=TraceFlags(TraceFlags.DEFAULT),  # not sampled, as ALWAYS_OFF says
                trace_state=parent.trace_state if parent.is_valid else None,
            )
        )


_IDS_ONLY = _IdsOnlyTracer()
_tracer: Tracer = _NO_OP
_provider: Any = None


def tracer() -> Tracer:
    """The process's tracer: the no-op tracer unless a provider was installed."""
    return _tracer


def use_provider(provider: Any) -> None:
    """Installs `provider` (an SDK TracerProvider) for the spans of serve/, or None to go back
    to the no-op tracer. Not the global provider: a test can install and remove its own."""
    global _tracer, _provider
    _provider = provider
    _tracer = _NO_OP if provider is None else provider.get_tracer(TRACER_NAME, aex.__version__)


def configure_from_env(env: Mapping[str, str] | None = None) -> bool:
    """Once per process, at server start. With OTEL_EXPORTER_OTLP_ENDPOINT set: every span
    recorded and exported over OTLP/HTTP in batches (True). Otherwise the ids-only tracer
    (`_IdsOnlyTracer`, what an ALWAYS_OFF sampler gives without the SDK): spans are
    non-recording, yet each request has a trace id (a caller's `traceparent` continued, or a
    new one) for the logs, the outbox rows and the `traceparent` sent on, at the cost of
    generating ids (False)."""
    global _tracer
    env = os.environ if env is None else env
    exporting = bool(env.get(OTLP_ENDPOINT_ENV))
    if _provider is not None or _tracer is _IDS_ONLY:
        return exporting
    if not exporting:
        _tracer = _IDS_ONLY  # ALWAYS_OFF's behaviour, without the SDK's cost per span
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or "aex"})
    provider = TracerProvider(resource=resource, sampler=ALWAYS_ON)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)  # for libraries tracing through the global API
    use_provider(provider)
    return exporting


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span, None when nothing records."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def context_of(traceparent: str | None) -> otel_context.Context | None:
    """The context a `traceparent` value continues (None: a root span)."""
    if not traceparent:
        return None
    return _PROPAGATOR.extract({"traceparent": traceparent})


def trace_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex, None outside a recorded span."""
    found = trace.get_current_span().get_span_context()
    if not found.is_valid:
        return None
    return format(found.trace_id, "032x"), format(found.span_id, "016x")


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: otel_context.Context | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    with _tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=dict(attributes or {})
    ) as current:
        yield current


def traced(name: str) -> Callable[[F], F]:
    """A span named `name` around each call of the decorated function (sync or async)."""

    def decorate(function: F) -> F:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with _tracer.start_as_current_span(name):
                    return await function(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with _tracer.start_as_current_span(name):
                return function(*args, **kwargs)

        return cast(F, run)

    return decorate


def headers_with_trace(headers: dict[str, str], traceparent: str | None) -> dict[str, str]:
    """`headers` plus the `traceparent` to send: the current span's, else `traceparent` as it
    was stored (a process that records nothing still passes its caller's trace on)."""
    sent = current_traceparent() or traceparent
    return {**headers, "traceparent": sent} if sent else headers


class RequestSpan:
    """The SERVER span of one HTTP request, child of a well-formed incoming `traceparent`,
    current while the request runs (the gateway, serve/gateway/pipeline.py, opens and ends
    it). With the no-op tracer there is none; with the ids-only tracer it records nothing
    (no name, no attributes: ids only)."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span, token: object) -> None:
        self._span = span
        self._token = token

    @staticmethod
    def start(scope: Scope, route: Callable[[str], str]) -> RequestSpan | None:
        """The request's span, made current; None with the no-op tracer. `route` gives the
        template of a path (span names of bounded cardinality)."""
        if _tracer is _NO_OP:
            return None
        incoming = header(scope, b"traceparent")
        parent = _PROPAGATOR.extract({"traceparent": incoming}) if incoming else None
        if _tracer is _IDS_ONLY:
            started = _IDS_ONLY.start_span("", parent)
        else:
            method, template = scope["method"], route(scope["path"])
            attributes = {
                "http.request.method": method,
                "http.route": template,
                "url.path": scope["path"],
                "aex.request_id": scope.get(REQUEST_ID_SCOPE_KEY, ""),
            }
            started = _tracer.start_span(
                f"{method} {template}", context=parent, kind=SpanKind.SERVER, attributes=attributes
            )
        return RequestSpan(started, otel_context.attach(trace.set_span_in_context(started)))

    def end(self, status: int | None, error: BaseException | None) -> None:
        """Ends the span: the answer's status (None if none was sent) and an error that
        escaped the request, recorded as `start_as_current_span` records it."""
        span = self._span
        if span.is_recording():
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if error is not None:
                span.record_exception(error, escaped=True)
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()
        otel_context.detach(self._token)  # type: ignore[arg-type]
