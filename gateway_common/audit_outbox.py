"""The audit trail and the system events through the shared outbox (gateway_common.outbox
and gateway_common.outbox_relay, the settlement's mechanism), for identity and quota.

- :class:`SqlAuditLog`: the ``AuditLog`` port on a unit of work's SQLAlchemy connection, so
  the event is one more row (topic ``audit``) in the transaction of the change;
- :class:`OutboxEventWriter`: system events as rows (topic ``system``), each batch its own
  transaction;
- :class:`AdjustmentSink`, :class:`SystemEventSink`: the relays' sinks, history's
  RecordAdjustments / RecordSystemEvents (batches, idempotent per id).

The rows carry no tenant or user in the outbox's subject columns: the relay's erasure sync
purges a subject's rows, and an erased user's audit events must stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway_common import db
from gateway_common.audit import AUDIT_TOPIC, SYSTEM_TOPIC, AuditEvent, AuditLog
from gateway_common.audit_proto import adjustment_out, from_json, system_event_out, to_json
from gateway_common.channels import call_metadata
from gateway_common.outbox import Entry, OutboxStore
from gateway_common.outbox_relay import (
    Relay,
    RelayPolicy,
    Result,
    Sink,
    SinkRefused,
    SinkUnavailable,
    Verdict,
)
from gateway_common.system_events import SystemEvent, Writer
from llmgw.history.v1 import audit_pb2, history_pb2_grpc

_SERVICE = "llmgw.history.v1.HistoryInternalService"
IDEMPOTENT = ((_SERVICE, "RecordAdjustments"), (_SERVICE, "RecordSystemEvents"))
_INSERT = "INSERT INTO outbox (id, topic, payload) VALUES (:id, :topic, :payload)"
_INSERT_PG = "INSERT INTO outbox (id, topic, payload) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING"
# Failures that say nothing about the entries: the batch is retried later, whole.
_PASSING = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNIMPLEMENTED,  # an older history during a rolling update
    grpc.StatusCode.CANCELLED,
}
_VERDICTS = {
    audit_pb2.ENTRY_OUTCOME_CREATED: Verdict.DELIVERED,
    audit_pb2.ENTRY_OUTCOME_DUPLICATE: Verdict.DELIVERED,
    audit_pb2.ENTRY_OUTCOME_REJECTED: Verdict.REJECTED,
}


class SqlAuditLog(AuditLog):
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def record(self, event: AuditEvent) -> None:
        payload = to_json(adjustment_out(event))
        await self._conn.execute(
            text(_INSERT), {"id": event.event_id, "topic": AUDIT_TOPIC, "payload": payload}
        )


class SqlSystemEventLog:
    """A system event as an outbox row in the caller's transaction (e.g. a key-ring
    rotation, recorded with the rows it re-encrypted)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def record(self, event: SystemEvent) -> None:
        payload = to_json(system_event_out(event))
        await self._conn.execute(
            text(_INSERT), {"id": event.event_id, "topic": SYSTEM_TOPIC, "payload": payload}
        )


def relay_pool(url: str, size: int = 2) -> AsyncConnectionPool:
    """A small autocommit pool for the outbox's own statements (opened on first use)."""
    return AsyncConnectionPool(
        db.libpq_conninfo(url),
        min_size=1,
        max_size=size,
        kwargs={"autocommit": True},
        max_lifetime=600,
        timeout=5.0,
        open=False,
    )


class OutboxEventWriter(Writer):
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def write(self, events: list[SystemEvent]) -> None:
        if self._pool.closed:
            await self._pool.open(wait=False)
        rows = [(e.event_id, SYSTEM_TOPIC, to_json(system_event_out(e))) for e in events]
        async with self._pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(_INSERT_PG, rows)


class _HistorySink(Sink):
    def __init__(self, channel: grpc.aio.Channel, service_token: str, timeout: float) -> None:
        self._stub = history_pb2_grpc.HistoryInternalServiceStub(channel)
        self._token = service_token
        self._timeout = timeout

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(
                request, timeout=self._timeout, metadata=call_metadata(service_token=self._token)
            )
        except grpc.aio.AioRpcError as err:
            code = err.code()
            name = code.name if code is not None else "UNKNOWN"
            message = f"history: {err.details() or name}"
            if code in _PASSING:
                raise SinkUnavailable(name, message) from None
            raise SinkRefused(name, message) from None

    @staticmethod
    def _results(entries: Sequence[Entry], unreadable: dict[str, str], reply: Any) -> list[Result]:
        out = [Result(i, Verdict.REJECTED, "UNREADABLE", m) for i, m in unreadable.items()]
        out += [
            Result(r.id, _VERDICTS.get(r.outcome, Verdict.REJECTED), r.reason, r.message)
            for r in reply.results
        ]
        return out


class AdjustmentSink(_HistorySink):
    async def deliver(self, entries: Sequence[Entry]) -> list[Result]:
        items, unreadable = _parse(entries, audit_pb2.Adjustment)
        reply = audit_pb2.RecordAdjustmentsResponse()
        if items:
            request = audit_pb2.RecordAdjustmentsRequest(adjustments=items)
            reply = await self._call(self._stub.RecordAdjustments, request)
        return self._results(entries, unreadable, reply)


class SystemEventSink(_HistorySink):
    async def deliver(self, entries: Sequence[Entry]) -> list[Result]:
        items, unreadable = _parse(entries, audit_pb2.SystemEvent)
        reply = audit_pb2.RecordSystemEventsResponse()
        if items:
            request = audit_pb2.RecordSystemEventsRequest(events=items)
            reply = await self._call(self._stub.RecordSystemEvents, request)
        return self._results(entries, unreadable, reply)


def _parse(entries: Sequence[Entry], kind: Any) -> tuple[list[Any], dict[str, str]]:
    items: list[Any] = []
    unreadable: dict[str, str] = {}
    for e in entries:
        try:
            items.append(from_json(e.payload, kind()))
        except ValueError as exc:
            unreadable[e.id] = str(exc)[:200]
    return items, unreadable


def relays(
    store: OutboxStore,
    channel: grpc.aio.Channel,
    service_token: str,
    timeout: float,
    policy: RelayPolicy | None = None,
) -> list[Relay]:
    """The audit and system relays of one replica, over the service's outbox."""
    return [
        Relay(store, AdjustmentSink(channel, service_token, timeout), AUDIT_TOPIC, policy),
        Relay(store, SystemEventSink(channel, service_token, timeout), SYSTEM_TOPIC, policy),
    ]
