"""The revocation feed of identity: what the changes that end a principal record (in
their own transaction), what every replica polls to forget cached keys, and what the
internal ListRevocations serves to the other services (gateway_common.revocation)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from gateway_common.cache import TtlCache
from gateway_common.errors import InvalidArgument
from gateway_common.principal import Principal
from gateway_common.revocation import DEFAULT_TIMING, PAGE, FeedTiming, Revocation, RevocationFeed
from identity_svc.ports import UnitOfWork, UowFactory

PRUNE_EVERY_SECONDS = 60.0


class RevocationUseCases:
    def __init__(
        self,
        uow: UowFactory,
        cache: TtlCache[bytes, Principal] | None = None,
        timing: FeedTiming = DEFAULT_TIMING,
        retention_seconds: float = 3600.0,
    ) -> None:
        self.uow = uow
        self.retention = timedelta(seconds=retention_seconds)
        self.feed = RevocationFeed(self._poll, cache or TtlCache(2.0, 100_000), timing)
        self._pruned_at = 0.0

    async def record(self, uow: UnitOfWork, kind: str, target_id: str) -> Revocation:
        """Inside the change's transaction: the event commits or rolls back with it."""
        return await uow.revocations.record(kind, target_id)

    def applied(self, event: Revocation) -> None:
        """After the commit: this replica forgets at once; the others within the bound."""
        self.feed.evict([event])

    async def page(self, after_sequence: int, page_size: int) -> list[Revocation]:
        if after_sequence < 0:
            raise InvalidArgument.field("after_sequence", "must not be negative")
        if page_size < 0:
            raise InvalidArgument.field("page_size", "must not be negative")
        limit = min(page_size or PAGE, PAGE)
        async with self.uow() as uow:
            return await uow.revocations.after(after_sequence, limit)

    async def _poll(self, after: int, limit: int) -> list[Revocation]:
        if time.monotonic() - self._pruned_at >= PRUNE_EVERY_SECONDS:
            await self._prune()
        async with self.uow() as uow:
            return await uow.revocations.after(after, limit)

    async def _prune(self) -> None:
        # Any replica may prune: deleting the same old rows twice is harmless. A reader
        # further behind than the retention had been failing long past the bound, and a
        # failing feed clears its cache when it resumes.
        async with self.uow() as uow:
            await uow.revocations.prune(datetime.now(UTC) - self.retention)
            await uow.commit()
        self._pruned_at = time.monotonic()
