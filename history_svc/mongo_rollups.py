"""The MongoDB adapter of RollupRepository (collection ``uso_diario``).

One document per (tenant, user, model, UTC day) holds the sums of that key's raw
interactions. FerretDB v1 has no multi-document transactions, so a rollup is never
incremented: it is recomputed from the raw documents after each change, under a version
token that makes concurrent recomputes safe (see :meth:`MongoRollupRepository.refresh`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from history_svc.domain import Bucket, DayKey, Filter, GroupBy, RebuildReport, Status
from history_svc.ports import RollupRepository

log = logging.getLogger("history.rollups")

ROLLUPS = "uso_diario"
VERSION = "versao"  # a fresh token per raw change; a recompute writes only if it still holds
# Bucket field -> rollup document field.
FIELDS = {
    "interactions": "interacoes",
    "tokens": "tokens_utilizados",
    "prompt_tokens": "tokens_prompt",
    "completion_tokens": "tokens_resposta",
    "latency_ms_sum": "tempo_resposta_ms",
    "errors": "erros",
    "cost_nanos": "custo_nanos",
}
GROUP_FIELDS = {GroupBy.DAY: "dia", GroupBy.USER: "usuario_id", GroupBy.MODEL: "llm_id"}
ROLLUP_INDEXES = [
    [("distribuidor_id", ASCENDING), ("dia", ASCENDING)],
    [("distribuidor_id", ASCENDING), ("usuario_id", ASCENDING), ("dia", ASCENDING)],
]
# What a recompute reads of each raw interaction (never the texts).
RAW_PROJECTION = {
    "_id": 0,
    "distribuidor_id": 1,
    "usuario_id": 1,
    "llm_id": 1,
    "dia": 1,
    "status": 1,
    "metadados.tokens_utilizados": 1,
    "metadados.tokens_prompt": 1,
    "metadados.tokens_resposta": 1,
    "metadados.tempo_resposta_ms": 1,
    "metadados.custo_nanos": 1,
}

Document = dict[str, Any]
Collection = AsyncCollection[Document]


def raw_key(doc: Document) -> DayKey:
    return DayKey(
        str(doc["distribuidor_id"]), str(doc["usuario_id"]), str(doc.get("llm_id", "")), doc["dia"]
    )


def raw_sums(doc: Document) -> Bucket:
    """One raw interaction as sums (a missing count is 0, as $sum reads it)."""
    meta = doc.get("metadados") or {}
    return Bucket(
        "",
        interactions=1,
        tokens=int(meta.get("tokens_utilizados") or 0),
        prompt_tokens=int(meta.get("tokens_prompt") or 0),
        completion_tokens=int(meta.get("tokens_resposta") or 0),
        latency_ms_sum=int(meta.get("tempo_resposta_ms") or 0),
        errors=int(doc.get("status") == Status.ERROR.value),
        cost_nanos=int(meta.get("custo_nanos") or 0),
    )


def rollup_sums(doc: Document) -> Bucket:
    return Bucket("", **{name: int(doc.get(field) or 0) for name, field in FIELDS.items()})


def key_fields(key: DayKey) -> Document:
    return {
        "distribuidor_id": key.tenant_id,
        "usuario_id": key.user_id,
        "llm_id": key.model_id,
        "dia": key.day,
    }


def rollup_document(key: DayKey, sums: Bucket) -> Document:
    return {
        "_id": key.document_id(),
        **key_fields(key),
        **{field: getattr(sums, name) for name, field in FIELDS.items()},
        VERSION: uuid.uuid4().hex,
    }


def summed(docs: Iterable[Document]) -> dict[DayKey, Bucket]:
    out: dict[DayKey, Bucket] = defaultdict(lambda: Bucket(""))
    for doc in docs:
        key = raw_key(doc)
        out[key] = out[key] + raw_sums(doc)
    return dict(out)


class MongoRollupRepository(RollupRepository):
    def __init__(self, raw: Collection, per_day_queries: bool = False) -> None:
        self.raw = raw
        self.rollups: Collection = raw.database[ROLLUPS]
        # FerretDB pushes only equalities down to SQL: one query per day there, where the
        # range would read every rollup of the tenant; MongoDB serves the range by index.
        self.per_day_queries = per_day_queries

    async def create_indexes(self) -> None:
        for keys in ROLLUP_INDEXES:
            await self.rollups.create_index(keys)

    async def refresh(self, keys: list[DayKey]) -> None:
        users: dict[tuple[str, str], set[DayKey]] = defaultdict(set)
        for key in keys:
            users[(key.tenant_id, key.user_id)].add(key)
        await asyncio.gather(*(self._refresh_user(t, u, sorted(k)) for (t, u), k in users.items()))

    async def _refresh_user(self, tenant_id: str, user_id: str, keys: list[DayKey]) -> None:
        """Bump, read the versions, read the raw sums, write where the version still holds.

        The caller changed the raw documents before this. A recompute that read the raw
        documents before a later change cannot win: that change's bump replaced the version
        it holds, so its write matches nothing, and the later refresh (which owns the newer
        version and read after the change) writes. A crash between the raw change and here
        is repaired by the relay's retry (history answers DUPLICATE and refreshes again) or
        by the rebuild command."""
        await asyncio.gather(*(self._bump(key) for key in keys))
        scope: Document = {"distribuidor_id": tenant_id, "usuario_id": user_id}
        ids = [key.document_id() for key in keys]
        versions = {
            doc["_id"]: doc.get(VERSION)
            async for doc in self.rollups.find({**scope, "_id": {"$in": ids}}, {VERSION: 1})
        }
        days = sorted({key.day for key in keys})
        # Equalities at the root (pushed down to SQL by FerretDB): one day is an equality.
        day_filter: Any = days[0] if len(days) == 1 else {"$in": days}
        raw = summed(
            [doc async for doc in self.raw.find({**scope, "dia": day_filter}, RAW_PROJECTION)]
        )
        await asyncio.gather(
            *(self._write(key, versions.get(key.document_id()), raw.get(key)) for key in keys)
        )

    async def _bump(self, key: DayKey) -> None:
        change = {"$set": {**key_fields(key), VERSION: uuid.uuid4().hex}}
        try:
            await self.rollups.update_one({"_id": key.document_id()}, change, upsert=True)
        except DuplicateKeyError:  # a concurrent bump inserted it first: now it exists
            await self.rollups.update_one({"_id": key.document_id()}, change)

    async def _write(self, key: DayKey, version: str | None, sums: Bucket | None) -> None:
        if version is None:
            return  # deleted meanwhile by a refresh that read after our bump: it owns the key
        guard = {"_id": key.document_id(), VERSION: version}
        if sums is None:
            result: Any = await self.rollups.delete_one(guard)
            done = result.deleted_count
        else:
            values = {field: getattr(sums, name) for name, field in FIELDS.items()}
            done = (await self.rollups.update_one(guard, {"$set": values})).matched_count
        if not done:
            log.debug("rollup changed meanwhile; the later refresh writes it")

    async def keys_of_user(self, tenant_id: str, user_id: str) -> list[DayKey]:
        cursor = self.rollups.find({"distribuidor_id": tenant_id, "usuario_id": user_id})
        return sorted([raw_key(doc) async for doc in cursor])

    async def sums(self, where: Filter, days: list[str], group_by: GroupBy) -> list[Bucket]:
        if not days:
            return []
        scope: Document = {"distribuidor_id": where.tenant_id}
        if where.user_id:
            scope["usuario_id"] = where.user_id
        if where.model_id:
            scope["llm_id"] = where.model_id
        if self.per_day_queries:
            parts = await asyncio.gather(*(self._find({**scope, "dia": day}) for day in days))
            docs = [doc for part in parts for doc in part]
        else:
            docs = await self._find({**scope, "dia": {"$gte": days[0], "$lte": days[-1]}})
        field = GROUP_FIELDS[group_by]
        out: dict[str, Bucket] = {}
        for doc in docs:
            sums = rollup_sums(doc)
            if sums.interactions:  # a bumped key not recomputed yet, or emptied
                group = str(doc.get(field, ""))
                out[group] = out.get(group, Bucket(group)) + sums
        return [out[k] for k in sorted(out)]

    async def _find(self, query: Document) -> list[Document]:
        return [doc async for doc in self.rollups.find(query, {VERSION: 0})]

    async def rebuild(self, tenant_id: str, repair: bool) -> RebuildReport:
        tenants = [tenant_id] if tenant_id else await self._tenants()
        checked, missing, stale, orphans = 0, [], [], []
        for tenant in tenants:
            one = await self._rebuild_tenant(tenant, repair)
            checked += one.keys_checked
            missing += one.missing
            stale += one.stale
            orphans += one.orphans
        return RebuildReport(checked, missing, stale, orphans)

    async def _tenants(self) -> list[str]:
        raw = await self.raw.distinct("distribuidor_id")
        stored = await self.rollups.distinct("distribuidor_id")
        return sorted({str(t) for t in [*raw, *stored]})

    async def _rebuild_tenant(self, tenant_id: str, repair: bool) -> RebuildReport:
        cursor = self.raw.find({"distribuidor_id": tenant_id}, RAW_PROJECTION, batch_size=5000)
        truth = summed([doc async for doc in cursor])
        stored = {
            raw_key(doc): rollup_sums(doc)
            async for doc in self.rollups.find({"distribuidor_id": tenant_id})
        }
        missing = sorted(k for k in truth if k not in stored)
        stale = sorted(k for k in truth if k in stored and stored[k] != truth[k])
        orphans = sorted(k for k, s in stored.items() if k not in truth and s.interactions)
        empty = [k for k, s in stored.items() if k not in truth and not s.interactions]
        if repair:
            await self._insert_missing([rollup_document(k, truth[k]) for k in missing])
            await self.refresh([*stale, *orphans, *empty])
        return RebuildReport(len(set(truth) | set(stored)), missing, stale, orphans)

    async def _insert_missing(self, docs: list[Document]) -> None:
        """Only where no rollup exists: one that appeared meanwhile came from a refresh."""
        for start in range(0, len(docs), 1000):
            try:
                await self.rollups.insert_many(docs[start : start + 1000], ordered=False)
            except BulkWriteError as exc:
                if any(e.get("code") not in (11000, 11001) for e in exc.details["writeErrors"]):
                    raise
