"""The storage seam of history: what the use cases need from the store."""

from __future__ import annotations

import abc
import datetime as dt

from gateway_common.audit import AuditEvent
from gateway_common.system_events import SystemEvent
from history_svc.audit_domain import AdjustmentFilter, SystemEventFilter
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


class InteractionRepository(abc.ABC):
    @abc.abstractmethod
    async def insert_many(self, items: list[Interaction]) -> list[Outcome]:
        """Store each item (ids unique within ``items``), unordered: one failure does not stop
        the others. Per item: CREATED, DUPLICATE (its id exists already, nothing stored) or
        REJECTED (the store cannot hold that document)."""

    @abc.abstractmethod
    async def tenant_of(self, interaction_id: str) -> str | None:
        """The tenant of the stored interaction with this id, None when there is none."""

    @abc.abstractmethod
    async def get(
        self, tenant_id: str, interaction_id: str, user_id: str = ""
    ) -> Interaction | None:
        """One interaction of ``tenant_id`` (and of ``user_id`` when given)."""

    @abc.abstractmethod
    async def page(
        self, where: Filter, after: Cursor | None, limit: int, max_seconds: float | None = None
    ) -> list[Interaction]:
        """Up to ``limit`` matches, newest first by (timestamp, interaction_id), after ``after``.

        ``where.text`` non-empty means a keyword search over question and answer. With
        ``max_seconds`` the store stops the query after that long: DeadlineExceeded."""

    @abc.abstractmethod
    async def stats(self, where: Filter, group_by: GroupBy) -> list[Bucket]:
        """Sums per key over the matches, sorted by key."""

    @abc.abstractmethod
    async def erase(self, erasure: Erasure) -> int:
        """Write the tombstone first, then delete every interaction of the user in the tenant
        at or before its time; how many went."""

    @abc.abstractmethod
    async def erasures(self, users: list[tuple[str, str]]) -> list[Erasure]:
        """The tombstones of these (tenant, user) pairs."""

    @abc.abstractmethod
    async def drop(self, tenant_id: str, user_id: str, interaction_ids: list[str]) -> None:
        """Delete these interactions of the user (recorded while it was being erased)."""

    @abc.abstractmethod
    async def list_erasures(
        self, since: dt.datetime | None, after: tuple[dt.datetime, str] | None, limit: int
    ) -> list[Erasure]:
        """Tombstones at or after ``since``, oldest first by (erase_time, key), after ``after``."""


class RollupRepository(abc.ABC):
    """Daily usage rollups, one per DayKey, kept equal to the sums of the raw interactions."""

    @abc.abstractmethod
    async def refresh(self, keys: list[DayKey]) -> None:
        """Recompute these keys' rollups from the raw interactions, after the caller changed
        them (inserted, dropped, erased). Idempotent and safe against concurrent refreshes:
        the last refresh of a key to start after the last raw change wins."""

    @abc.abstractmethod
    async def keys_of_user(self, tenant_id: str, user_id: str) -> list[DayKey]:
        """The keys of every rollup stored for this user."""

    @abc.abstractmethod
    async def sums(self, where: Filter, days: list[str], group_by: GroupBy) -> list[Bucket]:
        """Sums per group over the rollups of these whole UTC days matching ``where``'s
        tenant, user and model (its time range is ignored), sorted by key."""

    @abc.abstractmethod
    async def rebuild(self, tenant_id: str, repair: bool) -> RebuildReport:
        """Compare every rollup of the tenant (all tenants when empty) with the raw
        interactions; with ``repair`` make them equal. The differences found."""


class AuditRepository(abc.ABC):
    """historico_ajustes and logs_sistema; both ordered oldest first by (time, id)."""

    @abc.abstractmethod
    async def insert_adjustments(self, items: list[AuditEvent]) -> list[Outcome]:
        """Each stored once per event id (unordered): CREATED, DUPLICATE or REJECTED."""

    @abc.abstractmethod
    async def adjustments(
        self, where: AdjustmentFilter, after: tuple[dt.datetime, str] | None, limit: int
    ) -> list[AuditEvent]: ...

    @abc.abstractmethod
    async def clear_personal(self, tenant_id: str, user_id: str) -> int:
        """Set the personal values of the user's adjustments to None; how many changed."""

    @abc.abstractmethod
    async def insert_events(self, items: list[SystemEvent]) -> list[Outcome]:
        """Each stored once per event id (unordered): CREATED, DUPLICATE or REJECTED."""

    @abc.abstractmethod
    async def events(
        self, where: SystemEventFilter, after: tuple[dt.datetime, str] | None, limit: int
    ) -> list[SystemEvent]: ...
