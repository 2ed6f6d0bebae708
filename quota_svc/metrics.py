"""quota_svc's own Prometheus metrics (served on QUOTA_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import Counter

REFUSALS = Counter(
    "llmgw_quota_refusals_total",
    "Reserve calls refused, by reason (QUOTA_EXCEEDED, NO_ACTIVE_SUBSCRIPTION, ...).",
    ["reason"],
)
SETTLEMENTS = Counter(
    "llmgw_quota_settlements_total",
    "Reservations settled by Settle, by action (commit, release).",
    ["action"],
)
EXPIRED = Counter(
    "llmgw_quota_reservations_expired_total",
    "Reservations left open past their expiry: refunded and recorded as errors by the sweep.",
)
TOKENS_OVER_BOUND = Counter(
    "llmgw_quota_tokens_over_bound_total",
    "Tokens a provider reported beyond a reservation's upper bound (charged all the same).",
)
