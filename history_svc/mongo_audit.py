"""The MongoDB adapter of AuditRepository: collections ``historico_ajustes`` (the audit
trail) and ``logs_sistema`` (system events), with the data model's Portuguese field names.
Both are read oldest first by (timestamp, _id); the event's own id is ``_id``, so a
delivery replayed stores nothing twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from gateway_common.audit import Actor, AuditEvent, Change
from gateway_common.store_errors import mongo_boundary
from gateway_common.system_events import Severity, SystemEvent
from history_svc.audit_domain import AdjustmentFilter, SystemEventFilter
from history_svc.domain import Outcome, utc_millis
from history_svc.ports import AuditRepository

log = logging.getLogger("history.audit")

ADJUSTMENTS = "historico_ajustes"
SYSTEM_EVENTS = "logs_sistema"
SORT = [("timestamp", ASCENDING), ("_id", ASCENDING)]
_ADJUSTMENT_INDEXES = [
    [("distribuidor_id", ASCENDING), *SORT],
    [("distribuidor_id", ASCENDING), ("usuario_id", ASCENDING), *SORT],
    [("timestamp", ASCENDING)],
]
_EVENT_INDEXES = [[("timestamp", ASCENDING)], [("servico", ASCENDING), ("timestamp", ASCENDING)]]
_DUPLICATE_KEY = {11000, 11001}
Document = dict[str, Any]


def adjustment_document(e: AuditEvent) -> Document:
    a = e.actor
    return {
        "_id": e.event_id,
        "distribuidor_id": e.tenant_id,
        "servico": e.service,
        "recurso": e.resource,
        "recurso_id": e.resource_id,
        "acao": e.action,
        "usuario_id": e.user_id,
        "autor": {
            "chave_id": a.key_id,
            "papel": a.role,
            "distribuidor_id": a.tenant_id,
            "usuario_id": a.user_id,
        },
        "alteracoes": [
            {"campo": c.field, "antes": c.before, "depois": c.after, "pessoal": c.personal}
            for c in e.changes
        ],
        "timestamp": utc_millis(e.time),
        "request_id": e.request_id,
    }


def adjustment_from_document(doc: Document) -> AuditEvent:
    a = doc.get("autor") or {}
    return AuditEvent(
        service=doc.get("servico", ""),
        resource=doc.get("recurso", ""),
        resource_id=doc.get("recurso_id", ""),
        action=doc.get("acao", ""),
        actor=Actor(
            a.get("chave_id", ""),
            a.get("papel", ""),
            a.get("distribuidor_id", ""),
            a.get("usuario_id", ""),
        ),
        tenant_id=doc.get("distribuidor_id", ""),
        user_id=doc.get("usuario_id", ""),
        changes=tuple(
            Change(c.get("campo", ""), c.get("antes"), c.get("depois"), bool(c.get("pessoal")))
            for c in doc.get("alteracoes", [])
        ),
        request_id=doc.get("request_id", ""),
        time=_aware(doc["timestamp"]),
        event_id=str(doc["_id"]),
    )


def event_document(e: SystemEvent) -> Document:
    return {
        "_id": e.event_id,
        "servico": e.service,
        "evento": e.event,
        "severidade": e.severity.value,
        "detalhes": e.details,
        "timestamp": utc_millis(e.time),
        "instancia": e.instance,
    }


def event_from_document(doc: Document) -> SystemEvent:
    return SystemEvent(
        service=doc.get("servico", ""),
        event=doc.get("evento", ""),
        severity=Severity(doc.get("severidade", "info")),
        details=dict(doc.get("detalhes") or {}),
        time=_aware(doc["timestamp"]),
        instance=doc.get("instancia", ""),
        event_id=str(doc["_id"]),
    )


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _span(query: Document, start: dt.datetime | None, end: dt.datetime | None) -> None:
    span: Document = {}
    if start is not None:
        span["$gte"] = start
    if end is not None:
        span["$lt"] = end
    if span:
        query["timestamp"] = span


def _after(query: Document, after: tuple[dt.datetime, str] | None) -> None:
    if after is not None:
        when, key = after
        query["$or"] = [{"timestamp": {"$gt": when}}, {"timestamp": when, "_id": {"$gt": key}}]


async def _insert(collection: AsyncCollection[Document], docs: list[Document]) -> list[Outcome]:
    outcomes = [Outcome.CREATED] * len(docs)
    if not docs:
        return outcomes
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        if exc.details.get("writeConcernErrors"):
            raise
        for error in exc.details.get("writeErrors", []):
            duplicate = error.get("code") in _DUPLICATE_KEY
            outcomes[error["index"]] = Outcome.DUPLICATE if duplicate else Outcome.REJECTED
            if not duplicate:
                log.warning(
                    "audit document refused by the store", extra={"code": error.get("code")}
                )
    return outcomes


class MongoAuditRepository(AuditRepository):
    """Opens the collections (creating the indexes) on first use: no I/O when built."""

    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self.adjustments_c = client[database][ADJUSTMENTS]
        self.events_c = client[database][SYSTEM_EVENTS]
        self._ready = False
        self._lock = asyncio.Lock()

    async def ready(self) -> None:
        if self._ready:
            return
        async with self._lock:
            if not self._ready:
                for keys in _ADJUSTMENT_INDEXES:
                    await self.adjustments_c.create_index(keys)
                for keys in _EVENT_INDEXES:
                    await self.events_c.create_index(keys)
                self._ready = True

    async def insert_adjustments(self, items: list[AuditEvent]) -> list[Outcome]:
        async with mongo_boundary("history"):
            await self.ready()
            return await _insert(self.adjustments_c, [adjustment_document(e) for e in items])

    async def adjustments(
        self, where: AdjustmentFilter, after: tuple[dt.datetime, str] | None, limit: int
    ) -> list[AuditEvent]:
        query: Document = {}
        for name, value in (
            ("distribuidor_id", where.tenant_id),
            ("usuario_id", where.user_id),
            ("recurso", where.resource),
            ("acao", where.action),
            ("recurso_id", where.resource_id),
        ):
            if value:
                query[name] = value
        _span(query, where.start, where.end)
        _after(query, after)
        async with mongo_boundary("history"):
            await self.ready()
            cursor = self.adjustments_c.find(query, sort=SORT, limit=limit)
            return [adjustment_from_document(d) async for d in cursor]

    async def clear_personal(self, tenant_id: str, user_id: str) -> int:
        query = {"distribuidor_id": tenant_id, "usuario_id": user_id}
        changed = 0
        async with mongo_boundary("history"):
            await self.ready()
            docs = [d async for d in self.adjustments_c.find(query)]
            for doc in docs:
                changes = doc.get("alteracoes", [])
                if not any(c.get("pessoal") and (c.get("antes"), c.get("depois")) != (None, None)
                           for c in changes):  # fmt: skip
                    continue
                for c in changes:
                    if c.get("pessoal"):
                        c["antes"] = c["depois"] = None
                await self.adjustments_c.update_one(
                    {"_id": doc["_id"]}, {"$set": {"alteracoes": changes}}
                )
                changed += 1
        return changed

    async def insert_events(self, items: list[SystemEvent]) -> list[Outcome]:
        async with mongo_boundary("history"):
            await self.ready()
            return await _insert(self.events_c, [event_document(e) for e in items])

    async def events(
        self, where: SystemEventFilter, after: tuple[dt.datetime, str] | None, limit: int
    ) -> list[SystemEvent]:
        query: Document = {}
        if where.service:
            query["servico"] = where.service
        if where.event:
            query["evento"] = where.event
        if where.min_severity is not None:
            query["severidade"] = {"$in": where.severities()}
        _span(query, where.start, where.end)
        _after(query, after)
        async with mongo_boundary("history"):
            await self.ready()
            cursor = self.events_c.find(query, sort=SORT, limit=limit)
            return [event_from_document(d) async for d in cursor]
