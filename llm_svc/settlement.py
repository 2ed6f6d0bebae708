"""Settlement of an admitted call: one quota Settle (the ledger transition and the history
record in one transaction), retried while it may still succeed.

- ``now``: settle before the answer goes out (the caller waits for it); raises
  UNAVAILABLE when it could not be made durable in the time given, and nothing is
  charged (quota's sweep refunds the reservation and records the request as an error).
- ``later``: settle in the background (the caller is gone, or a stream whose deltas were
  sent could not settle in time): retried with backoff until the reservation expires.
  One that expires unsettled is counted (``llm_settlements_expired_total``): the only way
  a served answer can go uncharged.
llm keeps nothing on disk: what is not settled when a pod dies expires in quota.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from gateway_common.errors import DomainError, FailedPrecondition, NotFound, Unavailable
from llm_svc import metrics
from llm_svc.domain import Interaction, Outcome
from llm_svc.ports import TRANSIENT, QuotaPort

log = logging.getLogger("llm.settlement")

FIRST_BACKOFF = 0.05
MAX_BACKOFF = 1.0


class Settler:
    def __init__(self, quota: QuotaPort, attempt_timeout: float = 2.0) -> None:
        self._quota = quota
        self._attempt_timeout = attempt_timeout
        self._background: set[asyncio.Task[Any]] = set()

    async def now(self, record: Interaction, budget: float) -> None:
        """Settles within ``budget`` seconds (at least one attempt), shielded from the
        caller's cancellation; raises Unavailable when it could not."""
        task = self._spawn(self._settle(record, time.monotonic() + max(budget, 0.0)))
        if not await asyncio.shield(task):
            raise Unavailable(
                "the request could not be settled; nothing was charged", "SETTLEMENT_UNAVAILABLE"
            )

    def later(self, record: Interaction, expires: datetime | None) -> None:
        """Settles in the background until ``expires`` (the reservation's expiry)."""
        left = (expires - datetime.now(UTC)).total_seconds() if expires else 60.0
        self._spawn(self._settle(record, time.monotonic() + max(left, 1.0), background=True))

    async def drain(self) -> None:
        """Waits for background settlements (shutdown, tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def _spawn(self, work: Any) -> asyncio.Task[bool]:
        task: asyncio.Task[bool] = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _settle(self, record: Interaction, until: float, background: bool = False) -> bool:
        commit = record.outcome is not Outcome.ERROR
        backoff = FIRST_BACKOFF
        while True:
            left = until - time.monotonic()
            try:
                await self._quota.settle(
                    record, commit, max(min(left, self._attempt_timeout), 0.05)
                )
                return True
            except TRANSIENT as exc:
                reason = exc.reason
            except NotFound:  # a release of a reservation quota never made: nothing to do
                if not commit:
                    return True
                self._lost(record, commit, "RESERVATION_NOT_FOUND")
                return False
            except FailedPrecondition as exc:  # expired (refunded) or settled otherwise
                self._lost(record, commit, exc.reason)
                return False
            except DomainError as exc:  # refused for its content: retrying cannot help
                log.error(
                    "quota refused a settlement: %s",
                    exc.reason,
                    extra={"rid": record.interaction_id},
                )
                self._lost(record, commit, exc.reason)
                return False
            metrics.SETTLE_RETRIES.inc()
            if time.monotonic() + backoff >= until:
                if background:
                    self._lost(record, commit, reason)
                return False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _lost(self, record: Interaction, commit: bool, reason: str) -> None:
        if commit:  # a served answer that will not be charged (it expires refunded)
            metrics.SETTLEMENTS_EXPIRED.inc()
            log.error(
                "a served answer could not be settled: uncharged",
                extra={"rid": record.interaction_id, "reason": reason},
            )
