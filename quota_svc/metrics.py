"""quota_svc's own Prometheus metrics (served on QUOTA_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import Counter

REFUSALS = Counter(
    "llmgw_quota_refusals_total",
    "Reserve calls refused, by reason (QUOTA_EXCEEDED, NO_ACTIVE_SUBSCRIPTION, ...).",
    ["reason"],
)
LATE_COMMITS = Counter(
    "llmgw_quota_late_commits_total",
    "Commits of reservations the settlement had already expired (counted again).",
)
