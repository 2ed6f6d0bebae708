"""The MongoDB adapter of InteractionRepository (collection ``interacoes``).

Written for the subset both MongoDB and FerretDB v1 run: find with sort and
limit, $match / $group with one $sum / $sort. FerretDB v1 has no text index
(search scans in history instead: history_svc.mongo_search) and computes only the first
accumulator of a $group (FerretDB issue #4616), so each sum is its own pipeline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from history_svc.domain import (
    Bucket,
    Cursor,
    Erasure,
    Filter,
    GroupBy,
    Interaction,
    Outcome,
    Status,
    erasure_key,
)
from history_svc.mongo_documents import (
    Document,
    erasure_document,
    erasure_from_document,
    from_document,
    to_document,
)
from history_svc.mongo_rollups import MongoRollupRepository
from history_svc.mongo_search import ScanPacer, scan_for_keyword
from history_svc.ports import InteractionRepository

log = logging.getLogger("history.repository")

COLLECTION = "interacoes"
TOMBSTONES = "apagamentos"  # one tombstone per erased (tenant, user)
TEXT_INDEX = "interacoes_texto"
SORT = [("timestamp", DESCENDING), ("interacao_id", DESCENDING)]
INDEXES: list[tuple[list[tuple[str, int]], dict[str, Any]]] = [
    # The spec's index: a user's recent interactions in a tenant.
    ([("distribuidor_id", ASCENDING), ("usuario_id", ASCENDING), ("timestamp", DESCENDING)], {}),
    ([("interacao_id", ASCENDING)], {"unique": True}),
    # Keyset pages ordered by (timestamp, interacao_id), tenant-wide and per user.
    ([("distribuidor_id", ASCENDING), *SORT], {}),
    ([("distribuidor_id", ASCENDING), ("usuario_id", ASCENDING), *SORT], {}),
]
_DUPLICATE_KEY = {11000, 11001}
# Codes meaning "a text index is already there, defined differently": text works.
_INDEX_CONFLICT = {85, 86}
# Each sum of the statistics: (Bucket field, $sum operand, only errors).
MEASURES: list[tuple[str, Any, bool]] = [
    ("interactions", 1, False),
    ("tokens", "$metadados.tokens_utilizados", False),
    ("prompt_tokens", "$metadados.tokens_prompt", False),
    ("completion_tokens", "$metadados.tokens_resposta", False),
    ("latency_ms_sum", "$metadados.tempo_resposta_ms", False),
    ("errors", 1, True),
    ("cost_nanos", "$metadados.custo_nanos", False),  # written by llm_svc once prices exist
]

Collection = AsyncCollection[Document]


class MongoInteractionRepository(InteractionRepository):
    def __init__(
        self,
        collection: Collection,
        text_search: bool = False,
        escape_nul: bool = False,
        pacer: ScanPacer | None = None,
        ferretdb: bool = False,
    ) -> None:
        self.collection = collection
        self.ferretdb = ferretdb  # FerretDB pushes only equalities down to SQL
        self.rollups = MongoRollupRepository(collection, per_day_queries=ferretdb)
        self.pacer = pacer or ScanPacer()  # shared by this replica's keyword scans
        self.tombstones = collection.database[TOMBSTONES]
        self.text_search = text_search  # $text when True, else history scans and matches
        self.escape_nul = escape_nul  # texts escaped where the server cannot store U+0000

    @classmethod
    async def open(
        cls,
        client: AsyncMongoClient[Document],
        database: str,
        text_search: bool | None = None,
        pacer: ScanPacer | None = None,
    ) -> MongoInteractionRepository:
        """Create the indexes; ``text_search`` None: use a text index if the server has one."""
        collection = client[database][COLLECTION]
        for keys, options in INDEXES:
            await collection.create_index(keys, **options)
        await client[database][TOMBSTONES].create_index([("apagado_em", ASCENDING)])
        if text_search is None:
            text_search = await create_text_index(collection)
        escape_nul = not await stores_nul(client[database])
        ferretdb = await is_ferretdb(client)
        log.info(
            "indexes ready",
            extra={"text_search": text_search, "escape_nul": escape_nul, "ferretdb": ferretdb},
        )
        repo = cls(collection, text_search, escape_nul, pacer, ferretdb)
        await repo.rollups.create_indexes()
        return repo

    async def insert_many(self, items: list[Interaction]) -> list[Outcome]:
        if not items:
            return []
        docs = [to_document(item, self.escape_nul) for item in items]
        outcomes = [Outcome.CREATED] * len(docs)
        try:
            await self.collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if exc.details.get("writeConcernErrors"):
                raise
            for error in exc.details.get("writeErrors", []):
                duplicate = error.get("code") in _DUPLICATE_KEY
                outcomes[error["index"]] = Outcome.DUPLICATE if duplicate else Outcome.REJECTED
                if not duplicate:
                    log.warning("document refused by the store", extra={"code": error.get("code")})
        return outcomes

    async def tenant_of(self, interaction_id: str) -> str | None:
        doc = await self.collection.find_one(
            {"_id": interaction_id}, projection={"distribuidor_id": 1}
        )
        return None if doc is None else str(doc["distribuidor_id"])

    async def get(
        self, tenant_id: str, interaction_id: str, user_id: str = ""
    ) -> Interaction | None:
        query: Document = {"_id": interaction_id, "distribuidor_id": tenant_id}
        if user_id:
            query["usuario_id"] = user_id
        doc = await self.collection.find_one(query)
        return from_document(doc, self.escape_nul) if doc is not None else None

    async def page(
        self, where: Filter, after: Cursor | None, limit: int, max_seconds: float | None = None
    ) -> list[Interaction]:
        query = self._match(where)
        if after is not None:
            # Equality fields stay at the root, where FerretDB pushes them down to SQL.
            query["$or"] = [
                {"timestamp": {"$lt": after.timestamp}},
                {"timestamp": after.timestamp, "interacao_id": {"$lt": after.interaction_id}},
            ]
        if where.text and not self.text_search:
            return await scan_for_keyword(
                self.collection,
                query,
                SORT,
                where.text,
                limit,
                max_seconds,
                self.escape_nul,
                self.pacer,
            )
        # maxTimeMS: the server stops the scan (MongoDB and FerretDB v1.24 both honour it).
        time_limit = {} if max_seconds is None else {"max_time_ms": max(int(max_seconds * 1000), 1)}
        cursor = self.collection.find(query, sort=SORT, limit=limit, **time_limit)
        return [from_document(doc, self.escape_nul) async for doc in cursor]

    async def stats(self, where: Filter, group_by: GroupBy) -> list[Bucket]:
        match = self._match(where)
        sums = await asyncio.gather(
            *(self._sum(match, group_by, operand, errors) for _, operand, errors in MEASURES)
        )
        names = [name for name, _, _ in MEASURES]
        keys = sorted(set().union(*(s.keys() for s in sums)))
        return [
            Bucket(key, **{name: s.get(key, 0) for name, s in zip(names, sums, strict=True)})
            for key in keys
        ]

    async def erase(self, erasure: Erasure) -> int:
        # The tombstone goes first: a batch that inserts after this sees it and drops its own.
        key = {"_id": erasure_key(erasure.tenant_id, erasure.user_id)}
        try:
            await self.tombstones.replace_one(key, erasure_document(erasure), upsert=True)
        except DuplicateKeyError:  # a concurrent erasure inserted it first: update it
            await self.tombstones.replace_one(key, erasure_document(erasure))
        result = await self.collection.delete_many(
            {"distribuidor_id": erasure.tenant_id, "usuario_id": erasure.user_id}
        )
        return int(result.deleted_count)

    async def erasures(self, users: list[tuple[str, str]]) -> list[Erasure]:
        if not users:
            return []
        keys = sorted({erasure_key(t, u) for t, u in users})
        # One tombstone per erased user: a small collection, scanned by FerretDB for $in.
        cursor = self.tombstones.find({"_id": {"$in": keys}})
        return [erasure_from_document(doc) async for doc in cursor]

    async def drop(self, tenant_id: str, user_id: str, interaction_ids: list[str]) -> None:
        # Equality fields at the root (pushed down to SQL by FerretDB); the ids filter the rest.
        await self.collection.delete_many(
            {"distribuidor_id": tenant_id, "usuario_id": user_id, "_id": {"$in": interaction_ids}}
        )

    async def list_erasures(
        self, since: dt.datetime | None, after: tuple[dt.datetime, str] | None, limit: int
    ) -> list[Erasure]:
        query: Document = {}
        if since is not None:
            query["apagado_em"] = {"$gte": since}
        if after is not None:
            when, key = after
            query["$or"] = [
                {"apagado_em": {"$gt": when}},
                {"apagado_em": when, "_id": {"$gt": key}},
            ]
        cursor = self.tombstones.find(
            query, sort=[("apagado_em", ASCENDING), ("_id", ASCENDING)], limit=limit
        )
        return [erasure_from_document(doc) async for doc in cursor]

    async def _sum(
        self, match: Document, group_by: GroupBy, operand: Any, errors: bool
    ) -> dict[str, int]:
        if errors:
            match = {**match, "status": Status.ERROR.value}
        pipeline: list[Document] = [
            {"$match": match},
            {"$group": {"_id": f"${group_by.value}", "v": {"$sum": operand}}},
            {"$sort": {"_id": ASCENDING}},
        ]
        cursor = await self.collection.aggregate(pipeline)
        return {str(doc["_id"]): int(doc["v"]) async for doc in cursor}

    def _match(self, where: Filter) -> Document:
        query: Document = {"distribuidor_id": where.tenant_id}
        if where.user_id:
            query["usuario_id"] = where.user_id
        if where.model_id:
            query["llm_id"] = where.model_id
        if where.day:
            query["dia"] = where.day
        span: Document = {}
        if where.start is not None:
            span["$gte"] = where.start
        if where.end is not None:
            span["$lt"] = where.end
        if span:
            query["timestamp"] = span
        if where.text and self.text_search:
            query["$text"] = {"$search": where.text}
        return query


async def is_ferretdb(client: AsyncMongoClient[Document]) -> bool:
    """FerretDB answers buildInfo with its own version beside MongoDB's."""
    info = await client.admin.command("buildInfo")
    return "ferretdbVersion" in info


async def stores_nul(database: Any) -> bool:
    """Whether the server stores U+0000 in strings (MongoDB yes; FerretDB on PostgreSQL no)."""
    probe = database["_capacidade_nul"]
    try:
        await probe.replace_one({"_id": "nul"}, {"_id": "nul", "v": "a\x00b"}, upsert=True)
        doc = await probe.find_one({"_id": "nul"})
    except OperationFailure:
        return False
    return doc is not None and doc.get("v") == "a\x00b"


async def create_text_index(collection: Collection) -> bool:
    """Try to create the text index; False when the server has none (FerretDB v1)."""
    try:
        await collection.create_index(
            [("conteudo_pergunta", "text"), ("conteudo_resposta", "text")],
            name=TEXT_INDEX,
            default_language="none",
        )
    except OperationFailure as exc:
        if exc.code in _INDEX_CONFLICT:
            return True
        log.info("no text index on this server; search uses $regex", extra={"code": exc.code})
        return False
    return True
