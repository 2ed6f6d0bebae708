"""Revocations everywhere within one bound: a principal cache fed by identity's revocation
events, used by identity's own Authenticate and by every service's identity client.

identity writes one event (key revoked, user deleted, tenant deleted) in the transaction of
the change; sequences become visible in increasing order. A :class:`RevocationFeed` polls
the events after its cursor every ``interval`` seconds and forgets the cached principals they
name. The cache is only trusted while the last successful poll *started* at most
``max_staleness`` seconds ago: a change committed at T is seen by every poll started after T,
so no cache answers for it after T + max_staleness. When polls fail longer than that, the
cache is bypassed (every call asks identity, fail closed) and cleared when polls resume.

Events received in the last ``memory`` seconds are also a deny list: an answer that was in
flight when the event arrived, or that came from an identity replica which has not polled
yet, is refused instead of cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway_common.cache import TtlCache
from gateway_common.errors import Unauthenticated
from gateway_common.principal import Principal

log = logging.getLogger("gateway.revocation")

KINDS = ("key", "user", "tenant")
PAGE = 500


@dataclass(frozen=True)
class Revocation:
    sequence: int
    kind: str  # "key" | "user" | "tenant"
    target_id: str


def _targets(p: Principal) -> tuple[tuple[str, str], ...]:
    """The (kind, id) pairs an event may name to end this principal."""
    return (("key", p.key_id), ("user", p.user_id), ("tenant", p.tenant_id))


Fetch = Callable[[int, int], Awaitable[list[Revocation]]]
"""The events with sequence > after, in order, at most ``limit`` of them."""


@dataclass(frozen=True)
class FeedTiming:
    interval: float = 0.5  # seconds between polls
    max_staleness: float = 1.5  # the bound: no cached answer older than this after a change
    memory: float = 10.0  # how long received events also refuse answers in flight


DEFAULT_TIMING = FeedTiming()


class RevocationFeed:
    """A ``TtlCache`` of principals (by sha256 of the key) kept honest by the event feed.
    One event loop, no locks; the polling task starts on first use."""

    def __init__(
        self,
        fetch: Fetch,
        cache: TtlCache[bytes, Principal],
        timing: FeedTiming = DEFAULT_TIMING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.cache = cache
        self.timing = timing
        self._clock = clock
        self._cursor = 0
        self._synced_at: float | None = None  # start of the last successful poll
        # (kind, id) -> when received: the deny list, kept ``memory`` seconds.
        self._recent: dict[tuple[str, str], float] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # --- the cache, as Authenticate uses it --------------------------------------------

    def get(self, digest: bytes) -> Principal | None:
        self._ensure_started()
        return self.cache.get(digest) if self.trusted() else None

    def admit(self, digest: bytes, principal: Principal, ttl: float | None = None) -> Principal:
        """An answer just read from the source of truth (identity or its database): refused
        when a recent event names it, else cached (while the feed is trusted) and returned."""
        self._forget_old()
        if any(target in self._recent for target in _targets(principal)):
            raise Unauthenticated("API key revoked", "API_KEY_REVOKED")
        if self.trusted():
            self.cache.put(digest, principal, ttl)
        return principal

    def trusted(self) -> bool:
        synced = self._synced_at
        return synced is not None and self._clock() - synced <= self.timing.max_staleness

    def evict(self, events: list[Revocation]) -> None:
        """Forget what the events name (also used right after a local change)."""
        now = self._clock()
        named = {(event.kind, event.target_id) for event in events}
        for target in named:
            self._recent.pop(target, None)
            self._recent[target] = now  # insertion order stays time order
        self.cache.drop_if(lambda p: any(t in named for t in _targets(p)))  # one pass
        self._forget_old()

    # --- polling ------------------------------------------------------------------------

    async def poll(self) -> None:
        """One poll: read every event after the cursor, evict, then mark the feed fresh as
        of this poll's start. Raises what ``fetch`` raises."""
        started = self._clock()
        was_trusted = self.trusted()
        while True:
            events = await self._fetch(self._cursor, PAGE)
            if events:
                self.evict(events)
                self._cursor = events[-1].sequence
            if len(events) < PAGE:
                break
        if not was_trusted:
            self.cache.clear()  # filled before a gap we may not have seen: start afresh
        self._synced_at = started

    async def run(self) -> None:
        failing = False
        while True:
            try:
                await self.poll()
                if failing:
                    log.info("revocation feed back")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried; the cache stops being trusted
                if not failing:
                    log.warning("revocation feed failing: %s", type(exc).__name__)
                failing = True
            await asyncio.sleep(self.timing.interval)

    def _ensure_started(self) -> None:
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def close(self) -> None:
        self._closed = True  # a call still in flight must not start a new poller
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _forget_old(self) -> None:
        horizon = self._clock() - self.timing.memory
        while self._recent:
            target, received = next(iter(self._recent.items()))
            if received >= horizon:
                break
            del self._recent[target]
