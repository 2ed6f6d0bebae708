"""Fakes of history's seams: they subclass the real abstractions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from gateway_common.errors import Unauthenticated
from gateway_common.identity_client import Authenticator
from gateway_common.principal import Principal, Role
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
    Status,
    erasure_key,
)
from history_svc.ports import InteractionRepository, RollupRepository
from history_svc.service import HistoryService

PLATFORM = Principal(Role.PLATFORM_ADMIN, key_id="k-platform")
ADMIN_A = Principal(Role.TENANT_ADMIN, tenant_id="tenant-a", user_id="admin-a", key_id="k-aa")
ADMIN_B = Principal(Role.TENANT_ADMIN, tenant_id="tenant-b", user_id="admin-b", key_id="k-ab")
USER_A1 = Principal(Role.USER, tenant_id="tenant-a", user_id="user-a1", key_id="k-a1")
USER_A2 = Principal(Role.USER, tenant_id="tenant-a", user_id="user-a2", key_id="k-a2")
USER_B1 = Principal(Role.USER, tenant_id="tenant-b", user_id="user-b1", key_id="k-b1")
KEYS = {
    "key-platform": PLATFORM,
    "key-admin-a": ADMIN_A,
    "key-admin-b": ADMIN_B,
    "key-user-a1": USER_A1,
    "key-user-a2": USER_A2,
    "key-user-b1": USER_B1,
}


class FakeAuthenticator(Authenticator):
    """Resolves the fixed keys above; anything else is an invalid key."""

    def __init__(self, keys: dict[str, Principal] | None = None) -> None:
        self.keys = dict(KEYS if keys is None else keys)

    async def authenticate(self, api_key: str, timeout: float = 5.0) -> Principal:
        try:
            return self.keys[api_key]
        except KeyError:
            raise Unauthenticated("invalid API key", "INVALID_API_KEY") from None


class MemoryRepository(InteractionRepository):
    """The contract of the Mongo repository, in memory, for the use-case tests."""

    def __init__(self) -> None:
        self.rows: dict[str, Interaction] = {}
        self.tombstones: dict[tuple[str, str], Erasure] = {}

    async def insert_many(self, items: list[Interaction]) -> list[Outcome]:
        out = []
        for item in items:
            if item.interaction_id in self.rows:
                out.append(Outcome.DUPLICATE)
            else:
                self.rows[item.interaction_id] = item
                out.append(Outcome.CREATED)
        return out

    async def tenant_of(self, interaction_id: str) -> str | None:
        row = self.rows.get(interaction_id)
        return None if row is None else row.tenant_id

    async def get(
        self, tenant_id: str, interaction_id: str, user_id: str = ""
    ) -> Interaction | None:
        row = self.rows.get(interaction_id)
        if row is None or row.tenant_id != tenant_id or (user_id and row.user_id != user_id):
            return None
        return row

    def _matches(self, row: Interaction, where: Filter) -> bool:
        text = where.text.lower()
        return (
            row.tenant_id == where.tenant_id
            and (not where.user_id or row.user_id == where.user_id)
            and (not where.model_id or row.model_id == where.model_id)
            and (where.start is None or row.timestamp >= where.start)
            and (where.end is None or row.timestamp < where.end)
            and (not where.day or row.day == where.day)
            and (not text or text in row.question.lower() or text in row.answer.lower())
        )

    async def page(
        self, where: Filter, after: Cursor | None, limit: int, max_seconds: float | None = None
    ) -> list[Interaction]:
        rows = sorted(
            (r for r in self.rows.values() if self._matches(r, where)),
            key=lambda r: (r.timestamp, r.interaction_id),
            reverse=True,
        )
        if after is not None:
            rows = [
                r
                for r in rows
                if (r.timestamp, r.interaction_id) < (after.timestamp, after.interaction_id)
            ]
        return rows[:limit]

    async def stats(self, where: Filter, group_by: GroupBy) -> list[Bucket]:
        out: dict[str, Bucket] = {}
        for r in self.rows.values():
            if not self._matches(r, where):
                continue
            key = {GroupBy.DAY: r.day, GroupBy.USER: r.user_id, GroupBy.MODEL: r.model_id}[group_by]
            one = dataclasses.replace(sums_of(r), key=key)
            out[key] = dataclasses.replace(out.get(key, Bucket(key)) + one, key=key)
        return [out[k] for k in sorted(out)]

    async def erase(self, erasure: Erasure) -> int:
        self.tombstones[(erasure.tenant_id, erasure.user_id)] = erasure
        gone = [
            k
            for k, r in self.rows.items()
            if r.tenant_id == erasure.tenant_id and r.user_id == erasure.user_id
        ]
        for k in gone:
            del self.rows[k]
        return len(gone)

    async def erasures(self, users: list[tuple[str, str]]) -> list[Erasure]:
        return [self.tombstones[u] for u in users if u in self.tombstones]

    async def drop(self, tenant_id: str, user_id: str, interaction_ids: list[str]) -> None:
        for i in interaction_ids:
            row = self.rows.get(i)
            if row is not None and (row.tenant_id, row.user_id) == (tenant_id, user_id):
                del self.rows[i]

    async def list_erasures(
        self, since: dt.datetime | None, after: tuple[dt.datetime, str] | None, limit: int
    ) -> list[Erasure]:
        rows = sorted(
            (e for e in self.tombstones.values() if since is None or e.erase_time >= since),
            key=lambda e: (e.erase_time, erasure_key(e.tenant_id, e.user_id)),
        )
        if after is not None:
            rows = [e for e in rows if (e.erase_time, erasure_key(e.tenant_id, e.user_id)) > after]
        return rows[:limit]


def sums_of(r: Interaction) -> Bucket:
    m = r.metadata
    return Bucket(
        "",
        1,
        m.tokens_used,
        m.prompt_tokens,
        m.completion_tokens,
        m.response_time_ms,
        int(r.status is Status.ERROR),
        int(getattr(m, "cost_nanos", 0)),
    )


class MemoryRollups(RollupRepository):
    """Rollups over a MemoryRepository's rows, recomputed by refresh as the real ones are."""

    def __init__(self, repository: MemoryRepository) -> None:
        self.repository = repository
        self.stored: dict[DayKey, Bucket] = {}

    def _truth(self) -> dict[DayKey, Bucket]:
        out: dict[DayKey, Bucket] = {}
        for r in self.repository.rows.values():
            key = DayKey.of(r)
            out[key] = out.get(key, Bucket("")) + sums_of(r)
        return out

    async def refresh(self, keys: list[DayKey]) -> None:
        truth = self._truth()
        for key in keys:
            if key in truth:
                self.stored[key] = truth[key]
            else:
                self.stored.pop(key, None)

    async def keys_of_user(self, tenant_id: str, user_id: str) -> list[DayKey]:
        return sorted(k for k in self.stored if (k.tenant_id, k.user_id) == (tenant_id, user_id))

    async def sums(self, where: Filter, days: list[str], group_by: GroupBy) -> list[Bucket]:
        out: dict[str, Bucket] = {}
        for k, b in self.stored.items():
            if (
                k.tenant_id == where.tenant_id
                and (not where.user_id or k.user_id == where.user_id)
                and (not where.model_id or k.model_id == where.model_id)
                and k.day in days
            ):
                group = {GroupBy.DAY: k.day, GroupBy.USER: k.user_id, GroupBy.MODEL: k.model_id}
                g = group[group_by]
                out[g] = out.get(g, Bucket(g)) + b
        return [out[g] for g in sorted(out)]

    async def rebuild(self, tenant_id: str, repair: bool) -> RebuildReport:
        def mine(k: DayKey) -> bool:
            return not tenant_id or k.tenant_id == tenant_id

        truth = {k: v for k, v in self._truth().items() if mine(k)}
        stored = {k: v for k, v in self.stored.items() if mine(k)}
        report = RebuildReport(
            len(set(truth) | set(stored)),
            sorted(k for k in truth if k not in stored),
            sorted(k for k in truth if k in stored and stored[k] != truth[k]),
            sorted(k for k in stored if k not in truth),
        )
        if repair:
            await self.refresh(sorted(set(truth) | set(stored)))
        return report


def with_rollups(repo: MemoryRepository, **kwargs: Any) -> HistoryService:
    """A HistoryService over the in-memory repository and its rollups."""
    return HistoryService(repo, MemoryRollups(repo), **kwargs)
