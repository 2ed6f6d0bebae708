"""The storage seam of history: what the use cases need from the store."""

from __future__ import annotations

import abc

from history_svc.domain import Bucket, Cursor, Filter, GroupBy, Interaction


class InteractionRepository(abc.ABC):
    @abc.abstractmethod
    async def insert(self, item: Interaction) -> bool:
        """Store ``item``; False (and nothing stored) when its id already exists."""

    @abc.abstractmethod
    async def get(
        self, tenant_id: str, interaction_id: str, user_id: str = ""
    ) -> Interaction | None:
        """One interaction of ``tenant_id`` (and of ``user_id`` when given)."""

    @abc.abstractmethod
    async def page(self, where: Filter, after: Cursor | None, limit: int) -> list[Interaction]:
        """Up to ``limit`` matches, newest first by (timestamp, interaction_id), after ``after``.

        ``where.text`` non-empty means a keyword search over question and answer."""

    @abc.abstractmethod
    async def stats(self, where: Filter, group_by: GroupBy) -> list[Bucket]:
        """Sums per key over the matches, sorted by key."""

    @abc.abstractmethod
    async def delete_user(self, tenant_id: str, user_id: str) -> int:
        """Delete every interaction of the user in the tenant; how many went."""
