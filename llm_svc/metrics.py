"""llm_svc's own Prometheus metrics (the RPC ones come from gateway_common.metrics)."""

from __future__ import annotations

from urllib.parse import urlsplit

from prometheus_client import Counter, Gauge, Histogram

PROVIDER_LATENCY = Histogram(
    "llm_provider_latency_seconds",
    "Time the provider took to answer (whole answer, or whole stream), by model.",
    ["model"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
PROVIDER_ERRORS = Counter(
    "llm_provider_errors_total",
    "Provider calls that failed, by model and reason.",
    ["model", "reason"],
)
TOKENS = Counter(
    "llm_tokens_total",
    "Tokens reported by the provider, by model, kind (prompt/completion) and tenant: "
    "'other' unless the tenant is in GATEWAY_METRICS_TENANTS.",
    ["tenant", "model", "kind"],
)
SETTLE_RETRIES = Counter(
    "llm_settle_retries_total",
    "Settle attempts that failed for a reason that may pass (quota unreachable) and were retried.",
)
SETTLEMENTS_EXPIRED = Counter(
    "llm_settlements_expired_total",
    "Served answers whose settlement could not be made durable before their reservation "
    "expired: uncharged (the one documented case).",
)
TRUNCATED = Counter(
    "llm_answers_truncated_total",
    "Answers cut to the size history stores (GATEWAY_MAX_TEXT_BYTES), finish_reason length.",
)

# Routing (llm_svc/routing.py, llm_svc/breaker.py). Labels stay bounded: the provider's
# host (the first HOSTS_MAX seen, then "other") and the outcome; per-deployment detail
# goes to traces and history.
PROVIDER_ATTEMPTS = Counter(
    "llm_provider_attempts_total",
    "Provider attempts by host and outcome (ok, retryable: failed and may be retried, "
    "refused: the request was refused).",
    ["host", "outcome"],
)
ATTEMPT_LATENCY = Histogram(
    "llm_provider_attempt_seconds",
    "Time one provider attempt took, by host.",
    ["host"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
FALLBACKS = Counter("llm_fallbacks_total", "Requests that moved on to a fallback model.")
CIRCUITS = Gauge(
    "llm_circuit_breakers",
    "Deployments' circuit breakers in this process, by state (closed, open, half_open).",
    ["state"],
)
HOSTS_MAX = 64
_hosts: set[str] = set()


def host_label(url: str) -> str:
    host = urlsplit(url).hostname or "default"
    if host in _hosts:
        return host
    if len(_hosts) >= HOSTS_MAX:
        return "other"
    _hosts.add(host)
    return host


def attempt(host: str, outcome: str, seconds: float) -> None:
    PROVIDER_ATTEMPTS.labels(host, outcome).inc()
    ATTEMPT_LATENCY.labels(host).observe(seconds)
