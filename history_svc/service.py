"""History's use cases. Every read is scoped to one tenant and checked against the caller."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from gateway_common import pagination
from gateway_common.errors import DeadlineExceeded, InvalidArgument, NotFound
from gateway_common.principal import Principal, Role
from history_svc.domain import (
    Bucket,
    Cursor,
    Erasure,
    Filter,
    GroupBy,
    Interaction,
    Page,
    RecordResult,
    Stats,
    canonical_id,
    day_of,
    days_between,
    erasure_key,
    split_range,
    to_millis,
    utc_millis,
)
from history_svc.ports import InteractionRepository, RollupRepository
from history_svc.recording import Recorder
from history_svc.search_limits import SearchGate, SearchLimits

log = logging.getLogger("history.service")


@dataclass(frozen=True)
class Limits:
    max_text_bytes: int = 262_144
    default_page_size: int = 20
    max_page_size: int = 200
    max_query_chars: int = 200
    max_stats_days: int = 366
    max_batch: int = 500  # interactions per RecordInteractions call
    default_erasures_page: int = 100
    max_erasures_page: int = 500
    # A page of interactions stops before this many encoded bytes (gRPC refuses a message over
    # 4 MiB); one interaction larger than this still comes alone on its page.
    max_page_bytes: int = 3 * 1024 * 1024


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class HistoryService:
    def __init__(
        self,
        repository: InteractionRepository,
        rollups: RollupRepository,
        limits: Limits | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        pages: pagination.PageTokens | None = None,
        search_limits: SearchLimits | None = None,
        size_of: Callable[[Interaction], int] = lambda i: 0,
        on_erased: Callable[[Principal, Erasure, str, int], Awaitable[None]] | None = None,
    ) -> None:
        self.repository = repository
        self.rollups = rollups
        self.limits = limits or Limits()
        self.clock = clock
        self.pages = pages or pagination.PageTokens.ephemeral()
        self.recorder = Recorder(repository, rollups, self.limits.max_text_bytes)
        self.searches = SearchGate(search_limits or SearchLimits())
        self.size_of = size_of  # an interaction's encoded size on the wire
        self.on_erased = on_erased  # the audit trail's record of an erasure, written beside it

    async def record_batch(self, entries: list[Interaction | RecordResult]) -> list[RecordResult]:
        """Each interaction stored once per id; see :class:`history_svc.recording.Recorder`."""
        if not 1 <= len(entries) <= self.limits.max_batch:
            raise InvalidArgument.field(
                "interactions", f"1 to {self.limits.max_batch} interactions per call"
            )
        return await self.recorder.record(entries)

    async def get(self, caller: Principal, tenant_id: str, interaction_id: str) -> Interaction:
        _required("tenant_id", tenant_id)
        caller.require_tenant_member(tenant_id, caller.user_id)
        interaction_id = canonical_id(interaction_id, "interaction_id")
        # A user reads only its own: another user's interaction is simply not found.
        own = caller.user_id if caller.role is Role.USER else ""
        found = await self.repository.get(tenant_id, interaction_id, own)
        if found is None:
            raise NotFound("interaction not found", "INTERACTION_NOT_FOUND")
        return found

    async def list(self, caller: Principal, where: Filter, page_size: int, page_token: str) -> Page:
        """Newest first by (timestamp, interaction_id); stable while new ones arrive."""
        return await self._page(caller, where, page_size, page_token, None)

    async def search(
        self,
        caller: Principal,
        where: Filter,
        page_size: int,
        page_token: str,
        caller_remaining: float | None = None,
    ) -> Page:
        """A keyword page, under a time budget and the concurrency bounds of SearchLimits."""
        text = where.text.strip()
        if not text or len(text) > self.limits.max_query_chars:
            raise InvalidArgument.field(
                "query", f"1 to {self.limits.max_query_chars} characters required"
            )
        where = _with_text(where, text)
        budget = self.searches.limits.budget(caller_remaining)
        self._scoped(caller, where)  # refused callers never take a search slot
        with self.searches.admit(where.tenant_id):
            try:
                return await self._page(caller, where, page_size, page_token, budget)
            except DeadlineExceeded as exc:
                raise DeadlineExceeded(
                    f"the search did not finish within its {budget:.1f} s budget; "
                    "narrow it with a time range, a user or a longer keyword",
                    "SEARCH_TIME_LIMIT",
                    metadata={"budget_ms": str(int(budget * 1000))},
                ) from exc

    async def _page(
        self,
        caller: Principal,
        where: Filter,
        page_size: int,
        page_token: str,
        max_seconds: float | None,
    ) -> Page:
        where = self._scoped(caller, where)
        if where.start and where.end and where.end <= where.start:
            raise InvalidArgument.field("end_time", "must be after start_time")
        size = pagination.clamp_page_size(
            page_size, self.limits.default_page_size, self.limits.max_page_size
        )
        scope = where.scope()
        position = self.pages.decode_position(page_token, scope)
        after = Cursor(*position) if position is not None else None
        rows = await self.repository.page(where, after, size + 1, max_seconds)
        items, token = self.pages.next_page(rows, size, _position, scope)
        fit = self._fitting(items)
        if fit < len(items):
            items, token = items[:fit], self.pages.encode_position(_position(items[fit - 1]), scope)
        return Page(items, token)

    def _fitting(self, items: Sequence[Interaction]) -> int:
        """How many of ``items`` fit in one page's byte budget: at least one."""
        used = 0
        for count, item in enumerate(items):
            used += self.size_of(item) + _ITEM_OVERHEAD
            if used > self.limits.max_page_bytes and count > 0:
                return count
        return len(items)

    async def stats(self, caller: Principal, where: Filter, group_by: GroupBy) -> Stats:
        where = self._scoped(caller, where)
        if where.start is None or where.end is None:
            raise InvalidArgument.field("start_time", "start_time and end_time are required")
        if where.end <= where.start:
            raise InvalidArgument.field("end_time", "must be after start_time")
        if where.end - where.start > dt.timedelta(days=self.limits.max_stats_days):
            raise InvalidArgument.field(
                "end_time", f"the range may span at most {self.limits.max_stats_days} days"
            )
        buckets = await self._sums(where, group_by)
        total = sum(buckets, Bucket(""))
        return Stats(list(buckets), total)

    async def _sums(self, where: Filter, group_by: GroupBy) -> Sequence[Bucket]:
        """Whole UTC days from the rollups; the partial days at the edges from the raw
        interactions of that one day each (``dia`` is an equality FerretDB pushes down)."""
        assert where.start is not None and where.end is not None
        pieces, whole = split_range(where.start, where.end)
        parts = await asyncio.gather(
            self.rollups.sums(where, days_between(*whole) if whole else [], group_by),
            *(
                self.repository.stats(
                    dataclasses.replace(where, start=a, end=b, day=day_of(a)), group_by
                )
                for a, b in pieces
            ),
        )
        merged: dict[str, Bucket] = {}
        for bucket in (b for part in parts for b in part):
            merged[bucket.key] = merged.get(bucket.key, Bucket(bucket.key)) + bucket
        return [merged[k] for k in sorted(merged)]

    async def delete_user(
        self, caller: Principal, tenant_id: str, user_id: str, request_id: str = ""
    ) -> int:
        _required("tenant_id", tenant_id)
        caller.require_tenant_admin(tenant_id)
        _required("user_id", user_id)
        erasure = Erasure(tenant_id, user_id, utc_millis(self.clock()))
        deleted = await self.repository.erase(erasure)
        # After the raw documents went: each of the user's rollups recomputes to nothing.
        await self.rollups.refresh(await self.rollups.keys_of_user(tenant_id, user_id))
        if self.on_erased is not None:
            await self.on_erased(caller, erasure, request_id, deleted)
        log.info(
            "user interactions erased",
            extra={
                "tenant_id": tenant_id,
                "user_id": user_id,
                "deleted": deleted,
                "erasure_request_id": request_id,
                "by_key": caller.key_id,
            },
        )
        return deleted

    async def list_erasures(
        self, since: dt.datetime | None, page_size: int, page_token: str
    ) -> tuple[Sequence[Erasure], str]:
        """Tombstones at or after ``since``, oldest first (for the settlement relay)."""
        size = pagination.clamp_page_size(
            page_size, self.limits.default_erasures_page, self.limits.max_erasures_page
        )
        scope = {"since": to_millis(since) if since else None}
        after = self.pages.decode_position(page_token, scope)
        rows = await self.repository.list_erasures(since, after, size + 1)
        return self.pages.next_page(
            rows, size, lambda e: (e.erase_time, erasure_key(e.tenant_id, e.user_id)), scope
        )

    def _scoped(self, caller: Principal, where: Filter) -> Filter:
        """The filter the caller may run: its tenant; a user only its own interactions."""
        _required("tenant_id", where.tenant_id)
        user_id = where.user_id
        if caller.role is Role.USER and not user_id:
            user_id = caller.user_id
        caller.require_tenant_member(where.tenant_id, user_id)
        if user_id == where.user_id:
            return where
        return Filter(where.tenant_id, user_id, where.model_id, where.start, where.end, where.text)


_ITEM_OVERHEAD = 16  # a repeated field's tag and length, and the page's own fields, per item


def _position(item: Interaction) -> tuple[dt.datetime, str]:
    return item.timestamp, item.interaction_id


def _with_text(where: Filter, text: str) -> Filter:
    return Filter(where.tenant_id, where.user_id, where.model_id, where.start, where.end, text)


MAX_ID_CHARS = 200  # tenant and user ids (UUIDs in practice); also keeps index keys small


def _required(name: str, value: str) -> None:
    if not value:
        raise InvalidArgument.field(name, "required")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument.field(name, f"at most {MAX_ID_CHARS} characters")
