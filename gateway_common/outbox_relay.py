"""The outbox's relay: rows of gateway_common.outbox, delivered at least once to an
idempotent sink.

A service that must cause a side effect exactly once (quota's settlement records an
interaction in history) writes an ``outbox`` row in the same transaction as the decision
that causes it. A :class:`Relay` in every replica then claims due rows (``FOR UPDATE SKIP
LOCKED``, with a lease: a claimed row is invisible until ``next_attempt_at``, so a
replica that dies mid-delivery leaves its rows to the others once the lease runs out),
delivers them in batches to a :class:`Sink` (idempotent per entry id) and records the
result per entry:

- delivered: kept (payload included) for ``retention`` so idempotent replays can read
  it, then pruned;
- dropped by the sink (its subject was erased): deleted;
- refused for its content: retried with backoff, then parked as ``dead`` after
  ``max_rejections`` refusals (a metric, and ops can list and retry them);
- the sink unreachable: retried with backoff, never dead-lettered for that.

A batch the sink refuses as a whole for a reason other than being unreachable is split
and its entries delivered one by one, so one poison entry never blocks the others.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import logging
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter, Gauge, Histogram

from gateway_common import system_events
from gateway_common.outbox import Entry, OutboxStore

log = logging.getLogger("gateway.outbox")

DELIVERED = Counter(
    "llmgw_outbox_delivered_total", "Outbox entries the sink took, by topic.", ["topic"]
)
FAILURES = Counter(
    "llmgw_outbox_delivery_failures_total",
    "Failed delivery attempts, by topic and failure class (UNAVAILABLE, REJECTED, ...).",
    ["topic", "failure_class"],
)
DEAD_LETTERED = Counter(
    "llmgw_outbox_dead_lettered_total", "Entries parked as dead letters, by topic.", ["topic"]
)
DROPPED = Counter(
    "llmgw_outbox_dropped_total", "Entries dropped because their subject was erased.", ["topic"]
)
BATCH = Histogram(
    "llmgw_outbox_batch_size",
    "Entries per delivery batch, by topic.",
    ["topic"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
LAG = Histogram(
    "llmgw_outbox_lag_seconds",
    "From an entry's commit to its delivery, by topic (e.g. answer -> history record).",
    ["topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
ENTRIES = Gauge("llmgw_outbox_entries", "Outbox entries by topic and state.", ["topic", "state"])
OLDEST_PENDING = Gauge(
    "llmgw_outbox_oldest_pending_seconds",
    "Age of the oldest entry not yet delivered, by topic (0 when none): settlement lag "
    "that grows even when nothing is delivered at all.",
    ["topic"],
)


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    DROPPED = "dropped"  # the sink will never want it (e.g. its user was erased)
    REJECTED = "rejected"  # refused for its content


@dataclass(frozen=True)
class Result:
    id: str
    verdict: Verdict
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Erasure:
    tenant_id: str
    user_id: str
    erase_time: datetime


class SinkUnavailable(Exception):
    """The sink could not be reached (or timed out): the whole batch is retried later."""

    def __init__(self, failure_class: str, message: str = "") -> None:
        super().__init__(message or failure_class)
        self.failure_class = failure_class


class SinkRefused(Exception):
    """The sink refused the batch as a whole for another reason (split and retried)."""

    def __init__(self, failure_class: str, message: str = "") -> None:
        super().__init__(message or failure_class)
        self.failure_class = failure_class


class Sink(abc.ABC):
    """Where a topic's entries go; idempotent per entry id."""

    @abc.abstractmethod
    async def deliver(self, entries: Sequence[Entry]) -> list[Result]:
        """One result per entry; raises SinkUnavailable or SinkRefused for the batch."""

    async def erasures(self, since: datetime) -> list[Erasure]:
        """Subjects erased at or after ``since`` (their entries are purged)."""
        return []


@dataclass(frozen=True)
class RelayPolicy:
    batch: int = 200  # entries per delivery call
    lease_seconds: float = 30.0  # a claimed entry is invisible to other replicas this long
    idle_seconds: float = 0.05  # pause when nothing was due
    max_rejections: int = 5  # content refusals before an entry is parked as dead
    backoff_seconds: float = 0.5  # first retry delay, doubled per attempt...
    backoff_max_seconds: float = 60.0  # ...up to this
    retention_seconds: float = 86400.0  # delivered entries kept for replays
    housekeeping_seconds: float = 5.0  # gauges, pruning, erasure sync


class Relay:
    """Delivers one topic's entries; run one per replica (they share work safely)."""

    def __init__(
        self, store: OutboxStore, sink: Sink, topic: str, policy: RelayPolicy | None = None
    ) -> None:
        self._store = store
        self._sink = sink
        self._topic = topic
        self._p = policy or RelayPolicy()
        self._erased_since: datetime | None = None
        self._next_housekeeping = 0.0
        for counter in (DELIVERED, DEAD_LETTERED, DROPPED):  # series exist from the start,
            counter.labels(topic)  # so rates and alerts see 0, not nothing

    async def run_forever(self) -> None:
        while True:
            try:
                await self.housekeeping()
                moved = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store is down, say: try again shortly
                log.warning("outbox relay round failed", exc_info=True)
                moved = 0
                await asyncio.sleep(1.0)
            if moved < self._p.batch:
                await asyncio.sleep(self._p.idle_seconds)

    async def run_once(self) -> int:
        """Claims and delivers one batch; returns how many entries it claimed."""
        entries = await self._store.claim(self._topic, self._p.batch, self._p.lease_seconds)
        if entries:
            BATCH.labels(self._topic).observe(len(entries))
            await self._deliver(entries)
        return len(entries)

    async def _deliver(self, entries: Sequence[Entry]) -> None:
        try:
            results = await self._sink.deliver(entries)
        except SinkUnavailable as exc:
            FAILURES.labels(self._topic, exc.failure_class).inc(len(entries))
            delay = self._delay(max(e.attempts for e in entries))
            await self._store.defer([e.id for e in entries], exc.failure_class, str(exc), delay)
            return
        except SinkRefused as exc:
            if len(entries) > 1:  # find the poison entry: deliver one by one
                for entry in entries:
                    await self._deliver([entry])
                return
            results = [Result(entries[0].id, Verdict.REJECTED, exc.failure_class, str(exc))]
        await self._apply(entries, results)

    async def _apply(self, entries: Sequence[Entry], results: list[Result]) -> None:
        by_id = {e.id: e for e in entries}
        done = [r.id for r in results if r.verdict is Verdict.DELIVERED]
        dropped = [r.id for r in results if r.verdict is Verdict.DROPPED]
        await self._store.delivered(done)
        await self._store.drop(dropped)
        now = datetime.now(UTC)
        for rid in done:
            LAG.labels(self._topic).observe((now - by_id[rid].created_at).total_seconds())
        DELIVERED.labels(self._topic).inc(len(done))
        DROPPED.labels(self._topic).inc(len(dropped))
        answered = {r.id for r in results}
        for r in results:
            if r.verdict is Verdict.REJECTED:
                await self._reject(by_id[r.id], f"REJECTED:{r.reason}", r.message)
        for e in entries:  # a sink that skipped an entry: treat as a refusal, never loop
            if e.id not in answered:
                await self._reject(e, "REJECTED:NO_RESULT", "the sink returned no result")

    async def _reject(self, entry: Entry, failure_class: str, message: str) -> None:
        FAILURES.labels(self._topic, "REJECTED").inc()
        delay = self._delay(entry.attempts)
        dead = await self._store.reject(
            entry.id, failure_class, message, self._p.max_rejections, delay
        )
        if dead:
            DEAD_LETTERED.labels(self._topic).inc()
            log.error(
                "outbox entry parked as a dead letter",
                extra={"entry": entry.id, "failure_class": failure_class},
            )
            system_events.emit(
                "dead_letter",
                system_events.Severity.ERROR,
                topic=self._topic,
                entry_id=entry.id,
                failure_class=failure_class,
                attempts=entry.attempts,
            )

    def _delay(self, attempts: int) -> float:
        base = self._p.backoff_seconds * float(1 << min(max(attempts - 1, 0), 30))
        jitter: float = random.uniform(0.8, 1.2)
        return min(base, self._p.backoff_max_seconds) * jitter

    async def housekeeping(self) -> None:
        """Erasure sync, pruning and gauges, at most every ``housekeeping_seconds``."""
        if time.monotonic() < self._next_housekeeping:
            return
        self._next_housekeeping = time.monotonic() + self._p.housekeeping_seconds
        await self._sync_erasures()
        cutoff = datetime.now(UTC) - timedelta(seconds=self._p.retention_seconds)
        await self._store.prune_delivered(cutoff)
        seen = {(r["topic"], r["state"]): r["n"] for r in await self._store.counts()}
        for state in ("pending", "delivered", "dead"):
            ENTRIES.labels(self._topic, state).set(seen.get((self._topic, state), 0))
        oldest = await self._store.oldest_pending(self._topic)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        OLDEST_PENDING.labels(self._topic).set(max(age, 0.0))

    async def _sync_erasures(self) -> None:
        if self._erased_since is None:
            oldest = await self._store.oldest_undelivered()
            start = datetime.now(UTC) - timedelta(seconds=self._p.retention_seconds)
            self._erased_since = min(oldest, start) if oldest else start
        try:
            erasures = await self._sink.erasures(self._erased_since)
        except (SinkUnavailable, SinkRefused):
            return
        for e in erasures:
            await self._store.purge_subject(e.tenant_id, e.user_id, e.erase_time)
            self._erased_since = max(self._erased_since, e.erase_time)


@contextlib.asynccontextmanager
async def running(relay: Relay) -> AsyncIterator[asyncio.Task[None]]:
    """The relay as a task for the lifetime of the block (tests, tools)."""
    task = asyncio.get_running_loop().create_task(relay.run_forever())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
