"""The audit trail and system events in history: recorded by the other services' relays
(idempotent per id), listed by admins, and history's own events (erasures, its system
events) written directly, since history owns the store."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace

from gateway_common import pagination
from gateway_common.audit import Actor, AuditEvent, Change
from gateway_common.errors import InvalidArgument, PermissionDenied
from gateway_common.principal import Principal, Role
from gateway_common.system_events import SystemEvent, Writer
from history_svc.audit_domain import AdjustmentFilter, SystemEventFilter
from history_svc.domain import Erasure, RecordResult
from history_svc.ports import AuditRepository, InteractionRepository

_ERASURE_IDS = uuid.UUID("1f0c5a52-6d1e-4b7e-9a55-2f3e0c1d9a10")  # uuid5 namespace
MAX_BATCH = 500


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AuditService:
    def __init__(
        self,
        repository: AuditRepository,
        interactions: InteractionRepository,
        pages: pagination.PageTokens | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        default_page: int = 50,
        max_page: int = 500,
    ) -> None:
        self.repository = repository
        self.interactions = interactions  # for the erasure tombstones
        self.pages = pages or pagination.PageTokens.ephemeral()
        self.clock = clock
        self.default_page, self.max_page = default_page, max_page

    async def record_adjustments(
        self, entries: Sequence[AuditEvent | RecordResult]
    ) -> list[RecordResult]:
        """Each adjustment stored once per id. One about a user erased after it happened
        is stored without its personal values (the change stays, its ids only)."""
        _batch(entries, "adjustments")
        events = [e for e in entries if isinstance(e, AuditEvent)]
        events = await self._without_erased_values(events)
        outcomes = iter(await self.repository.insert_adjustments(events))
        for e in events:  # a deleted user's personal data leaves the trail with it
            if (e.resource, e.action) == ("user", "deleted") and e.user_id:
                await self.repository.clear_personal(e.tenant_id, e.user_id)
        return [
            e if isinstance(e, RecordResult) else RecordResult(e.event_id, next(outcomes))
            for e in entries
        ]

    async def _without_erased_values(self, events: list[AuditEvent]) -> list[AuditEvent]:
        subjects = list({(e.tenant_id, e.user_id) for e in events if e.user_id})
        if not subjects:
            return events
        erased = {(t.tenant_id, t.user_id): t.erase_time
                  for t in await self.interactions.erasures(subjects)}  # fmt: skip
        out = []
        for e in events:
            when = erased.get((e.tenant_id, e.user_id))
            if when is not None and e.time <= when:
                e = replace(e, changes=tuple(_cleared(c) for c in e.changes))
            out.append(e)
        return out

    async def list_adjustments(
        self, caller: Principal, where: AdjustmentFilter, page_size: int, page_token: str
    ) -> tuple[list[AuditEvent], str]:
        where = _scoped(caller, where)
        _range(where.start, where.end)
        size = pagination.clamp_page_size(page_size, self.default_page, self.max_page)
        scope = where.scope()
        after = self.pages.decode_position(page_token, scope)
        rows = await self.repository.adjustments(where, after, size + 1)
        return self.pages.next_page(rows, size, lambda e: (e.time, e.event_id), scope)

    async def erased(
        self, caller: Principal, erasure: Erasure, request_id: str, deleted: int
    ) -> None:
        """History's own event for an erasure, written beside it: one per request_id
        (a replay writes nothing more). The user's earlier events lose their personal
        values; the events themselves stay."""
        key = f"{erasure.tenant_id}/{erasure.user_id}/{request_id}" if request_id else ""
        event_id = str(uuid.uuid5(_ERASURE_IDS, key)) if key else str(uuid.uuid4())
        event = AuditEvent(
            service="history",
            resource="interactions",
            resource_id=erasure.user_id,
            action="erased",
            actor=Actor.of(caller),
            tenant_id=erasure.tenant_id,
            user_id=erasure.user_id,
            changes=(Change("interactions_deleted", None, deleted),),
            request_id=request_id,
            time=erasure.erase_time,
            event_id=event_id,
        )
        await self.repository.clear_personal(erasure.tenant_id, erasure.user_id)
        await self.repository.insert_adjustments([event])  # DUPLICATE on a replay: fine

    async def record_events(
        self, entries: Sequence[SystemEvent | RecordResult]
    ) -> list[RecordResult]:
        _batch(entries, "events")
        events = [e for e in entries if isinstance(e, SystemEvent)]
        outcomes = iter(await self.repository.insert_events(events))
        return [
            e if isinstance(e, RecordResult) else RecordResult(e.event_id, next(outcomes))
            for e in entries
        ]

    async def list_events(
        self, caller: Principal, where: SystemEventFilter, page_size: int, page_token: str
    ) -> tuple[list[SystemEvent], str]:
        caller.require_platform_admin()
        _range(where.start, where.end)
        size = pagination.clamp_page_size(page_size, self.default_page, self.max_page)
        scope = where.scope()
        after = self.pages.decode_position(page_token, scope)
        rows = await self.repository.events(where, after, size + 1)
        return self.pages.next_page(rows, size, lambda e: (e.time, e.event_id), scope)


class StoreEventWriter(Writer):
    """history's own system events: straight into logs_sistema (it owns the store)."""

    def __init__(self, repository: AuditRepository) -> None:
        self.repository = repository

    async def write(self, events: list[SystemEvent]) -> None:
        await self.repository.insert_events(events)


def _cleared(change: Change) -> Change:
    return replace(change, before=None, after=None) if change.personal else change


def _batch(entries: Sequence[object], name: str) -> None:
    if not 1 <= len(entries) <= MAX_BATCH:
        raise InvalidArgument.field(name, f"1 to {MAX_BATCH} per call")


def _range(start: dt.datetime | None, end: dt.datetime | None) -> None:
    if start and end and end <= start:
        raise InvalidArgument.field("end_time", "must be after start_time")


def _scoped(caller: Principal, where: AdjustmentFilter) -> AdjustmentFilter:
    """Platform admins: any tenant, or all; tenant admins: their own only; users: none."""
    if caller.is_platform_admin:
        return where
    if caller.role is not Role.TENANT_ADMIN:
        raise PermissionDenied("only administrators may read the audit trail", "ADMIN_REQUIRED")
    if where.tenant_id and where.tenant_id != caller.tenant_id:
        raise PermissionDenied("not allowed for this tenant", "TENANT_ACCESS_DENIED")
    return replace(where, tenant_id=caller.tenant_id)
