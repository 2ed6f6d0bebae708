"""OpenTelemetry tracing, off by default.

Turned on by ``GATEWAY_TRACING=otlp`` (spans exported with OTLP/gRPC to
``OTEL_EXPORTER_OTLP_ENDPOINT``, standard OTel variables apply) or by a test
installing its own provider through :func:`install`. When on, every server
and client channel of the suite carries the W3C trace context, so one
``Chat`` is one trace across llm, identity, quota, the provider call and
history.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_enabled = False


def enabled() -> bool:
    return _enabled


def install(service: str, processors: Sequence[SpanProcessor]) -> TracerProvider:
    """Install a tracer provider with the given span processors and turn tracing on."""
    global _enabled
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _enabled = True
    return provider


def configure_from_env(service: str) -> None:
    """Called once from ``__main__``: OTLP export when GATEWAY_TRACING=otlp."""
    if os.environ.get("GATEWAY_TRACING", "").lower() != "otlp":
        return
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    install(service, [BatchSpanProcessor(OTLPSpanExporter())])


def server_interceptors() -> list[Any]:
    if not _enabled:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return [aio_server_interceptor()]  # type: ignore[no-untyped-call]


def client_interceptors() -> list[Any]:
    if not _enabled:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors())  # type: ignore[no-untyped-call]


def tracer(name: str) -> trace.Tracer:
    """A tracer for manual spans (the provider call); a no-op while tracing is off."""
    return trace.get_tracer(name)
