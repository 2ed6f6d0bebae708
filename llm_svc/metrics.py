"""llm_svc's own Prometheus metrics (the RPC ones come from gateway_common.metrics)."""

from __future__ import annotations

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
    "Tokens reported by the provider, by tenant, model and kind (prompt/completion).",
    ["tenant", "model", "kind"],
)
SPOOL_DEPTH = Gauge(
    "llm_history_spool_depth",
    "Interactions waiting in the local spool for history to come back.",
)
SPOOLED = Counter(
    "llm_history_spooled_total", "Interactions written to the spool because history failed."
)
COMMIT_FAILURES = Counter(
    "llm_quota_commit_failures_total",
    "Answers returned whose quota Commit failed at once (transient ones are spooled).",
)
COMMIT_SPOOL_DEPTH = Gauge(
    "llm_commit_spool_depth",
    "Commits waiting in the local spool for quota to come back.",
)
COMMITS_SPOOLED = Counter(
    "llm_commit_spooled_total", "Commits written to the spool because quota did not answer."
)
