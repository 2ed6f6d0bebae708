"""Prometheus metrics common to every service, served on the service's metrics port."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
RPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed, by service, method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
RPC_LATENCY = Histogram(
    "grpc_server_handling_seconds",
    "Time to handle an RPC, by service and method.",
    ["grpc_service", "grpc_method"],
    buckets=BUCKETS,
)

# HTTP doors (llm's OpenAI-compatible one): labels bounded by the routes' templates.
HTTP_HANDLED = Counter(
    "http_server_requests_total",
    "HTTP requests completed, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "http_server_request_duration_seconds",
    "Time to handle an HTTP request (a stream: until its end), by route template and method.",
    ["route", "method"],
    buckets=BUCKETS,
)

RPC_IN_FLIGHT = Gauge("llmgw_rpcs_in_flight", "RPCs being handled now (the shedding bound's use).")
RPC_SHED = Counter(
    "llmgw_rpcs_shed_total",
    "RPCs refused with UNAVAILABLE/OVERLOADED at GATEWAY_MAX_CONCURRENT_RPCS, by service.",
    ["grpc_service"],
)

# Tenants that keep their own value in a ``tenant`` label (GATEWAY_METRICS_TENANTS); every
# other tenant is "other", so a label's cardinality never grows with the customer base.
_labelled_tenants: frozenset[str] = frozenset()
OTHER_TENANT = "other"


def label_tenants(tenant_ids: str) -> None:
    """Set the allow-list from its setting (comma-separated ids; empty = none)."""
    global _labelled_tenants
    _labelled_tenants = frozenset(t.strip() for t in tenant_ids.split(",") if t.strip())


def tenant_label(tenant_id: str) -> str:
    return tenant_id if tenant_id in _labelled_tenants else OTHER_TENANT


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:
    """Start the HTTP exposition endpoint (a daemon thread); 0 disables it."""
    if port:
        start_http_server(port, addr=host)
