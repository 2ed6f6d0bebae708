"""Lazy adapters: the repositories open (creating their indexes) on first use, so building
the service does no I/O and a store that is down at start only delays readiness. Every call
goes through the store-error boundary (an outage is UNAVAILABLE)."""

from __future__ import annotations

import asyncio
import datetime as dt

from pymongo import AsyncMongoClient

from gateway_common.store_errors import mongo_boundary
from history_svc.domain import (
    Bucket,
    Cursor,
    DayKey,
    Erasure,
    Filter,
    GroupBy,
    Interaction,
    Outcome,
    RebuildReport,
)
from history_svc.mongo_documents import Document
from history_svc.mongo_interactions import MongoInteractionRepository
from history_svc.mongo_search import ScanPacer
from history_svc.ports import InteractionRepository, RollupRepository


class LazyMongoRepository(InteractionRepository):
    def __init__(
        self,
        client: AsyncMongoClient[Document],
        database: str,
        text_search: bool | None,
        pacer: ScanPacer | None = None,
    ) -> None:
        self._client, self._database, self._text = client, database, text_search
        self._pacer = pacer
        self._repo: MongoInteractionRepository | None = None
        self._lock = asyncio.Lock()

    async def ready(self) -> MongoInteractionRepository:
        if self._repo is None:
            async with self._lock:
                if self._repo is None:
                    self._repo = await MongoInteractionRepository.open(
                        self._client, self._database, self._text, self._pacer
                    )
        return self._repo

    async def insert_many(self, items: list[Interaction]) -> list[Outcome]:
        async with mongo_boundary("history"):
            return await (await self.ready()).insert_many(items)

    async def tenant_of(self, interaction_id: str) -> str | None:
        async with mongo_boundary("history"):
            return await (await self.ready()).tenant_of(interaction_id)

    async def get(
        self, tenant_id: str, interaction_id: str, user_id: str = ""
    ) -> Interaction | None:
        async with mongo_boundary("history"):
            return await (await self.ready()).get(tenant_id, interaction_id, user_id)

    async def page(
        self, where: Filter, after: Cursor | None, limit: int, max_seconds: float | None = None
    ) -> list[Interaction]:
        async with mongo_boundary("history"):
            return await (await self.ready()).page(where, after, limit, max_seconds)

    async def stats(self, where: Filter, group_by: GroupBy) -> list[Bucket]:
        async with mongo_boundary("history"):
            return await (await self.ready()).stats(where, group_by)

    async def erase(self, erasure: Erasure) -> int:
        async with mongo_boundary("history"):
            return await (await self.ready()).erase(erasure)

    async def erasures(self, users: list[tuple[str, str]]) -> list[Erasure]:
        async with mongo_boundary("history"):
            return await (await self.ready()).erasures(users)

    async def drop(self, tenant_id: str, user_id: str, interaction_ids: list[str]) -> None:
        async with mongo_boundary("history"):
            await (await self.ready()).drop(tenant_id, user_id, interaction_ids)

    async def list_erasures(
        self, since: dt.datetime | None, after: tuple[dt.datetime, str] | None, limit: int
    ) -> list[Erasure]:
        async with mongo_boundary("history"):
            return await (await self.ready()).list_erasures(since, after, limit)


class LazyMongoRollups(RollupRepository):
    """The rollups of a LazyMongoRepository's database."""

    def __init__(self, interactions: LazyMongoRepository) -> None:
        self.interactions = interactions

    async def refresh(self, keys: list[DayKey]) -> None:
        async with mongo_boundary("history"):
            await (await self.interactions.ready()).rollups.refresh(keys)

    async def keys_of_user(self, tenant_id: str, user_id: str) -> list[DayKey]:
        async with mongo_boundary("history"):
            return await (await self.interactions.ready()).rollups.keys_of_user(tenant_id, user_id)

    async def sums(self, where: Filter, days: list[str], group_by: GroupBy) -> list[Bucket]:
        async with mongo_boundary("history"):
            return await (await self.interactions.ready()).rollups.sums(where, days, group_by)

    async def rebuild(self, tenant_id: str, repair: bool) -> RebuildReport:
        async with mongo_boundary("history"):
            return await (await self.interactions.ready()).rollups.rebuild(tenant_id, repair)
