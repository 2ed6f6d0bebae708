"""What bounds a keyword search, so one tenant cannot stall the store for the others.

A search without a text index (FerretDB v1) scans the matching interactions in the store and
costs about (text bytes x keyword length); so every search runs under a time budget (the
caller's deadline, capped) and under two counts per replica: searches of one tenant and
searches in all. Over either count the search is refused at once, never queued.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from gateway_common.errors import ResourceExhausted

# Left of the caller's deadline for the store to notice its time limit and answer; FerretDB
# overshoots maxTimeMS by a few hundred milliseconds on a long scan (measured: 1.3 s for 1 s).
DEADLINE_MARGIN_SECONDS = 0.5
MIN_BUDGET_SECONDS = 0.05


@dataclass(frozen=True)
class SearchLimits:
    max_seconds: float = 5.0  # a search's store time, at most
    per_tenant: int = 2  # concurrent searches of one tenant, per replica
    total: int = 8  # concurrent searches of all tenants, per replica

    def budget(self, caller_remaining: float | None) -> float:
        """The store time of one search: the caller's remaining time less a margin, capped."""
        if caller_remaining is None:
            return self.max_seconds
        return max(
            min(self.max_seconds, caller_remaining - DEADLINE_MARGIN_SECONDS),
            MIN_BUDGET_SECONDS,
        )


class SearchGate:
    """Counts the searches in flight on this replica (one event loop: no lock needed)."""

    def __init__(self, limits: SearchLimits) -> None:
        self.limits = limits
        self._running: dict[str, int] = {}
        self._total = 0

    @contextlib.contextmanager
    def admit(self, tenant_id: str) -> Iterator[None]:
        mine = self._running.get(tenant_id, 0)
        if mine >= self.limits.per_tenant:
            raise _busy(
                f"this tenant already runs {mine} searches; retry when one ends",
                "TOO_MANY_TENANT_SEARCHES",
                self.limits.per_tenant,
            )
        if self._total >= self.limits.total:
            raise _busy(
                "too many searches in progress; retry shortly",
                "TOO_MANY_SEARCHES",
                self.limits.total,
            )
        self._running[tenant_id] = mine + 1
        self._total += 1
        try:
            yield
        finally:
            self._total -= 1
            left = self._running[tenant_id] - 1
            if left:
                self._running[tenant_id] = left
            else:
                del self._running[tenant_id]


def _busy(message: str, reason: str, limit: int) -> ResourceExhausted:
    return ResourceExhausted(message, reason, metadata={"limit": str(limit)})
