"""Audit and system events <-> their history protos (llmgw.history.v1 Adjustment and
SystemEvent), for the writers (identity, quota, llm) and for history's own mapping.

In an outbox row an event is the proto3 JSON of its message (UTF-8): readable in the table
by ops, and one conversion both ways."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from google.protobuf import json_format, struct_pb2

from gateway_common.audit import Actor, AuditEvent, Change
from gateway_common.logs import request_id_var
from gateway_common.protoconv import to_timestamp
from gateway_common.system_events import Severity, SystemEvent
from llmgw.history.v1 import audit_pb2

SEVERITY_OUT = {
    Severity.INFO: audit_pb2.SEVERITY_INFO,
    Severity.WARNING: audit_pb2.SEVERITY_WARNING,
    Severity.ERROR: audit_pb2.SEVERITY_ERROR,
}
SEVERITY_IN = {v: k for k, v in SEVERITY_OUT.items()}


def value_out(value: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    if value is None:
        out.null_value = struct_pb2.NULL_VALUE
    else:
        json_format.ParseDict(value, out)
    return out


def value_in(value: struct_pb2.Value) -> Any:
    """The Python value of a Value; whole numbers back as int (Value holds doubles)."""
    return _whole(json_format.MessageToDict(value)) if value.WhichOneof("kind") else None


def _whole(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _whole(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v) for v in value]
    return value


def adjustment_out(event: AuditEvent) -> audit_pb2.Adjustment:
    a = event.actor
    return audit_pb2.Adjustment(
        adjustment_id=event.event_id,
        tenant_id=event.tenant_id,
        service=event.service,
        resource=event.resource,
        resource_id=event.resource_id,
        action=event.action,
        user_id=event.user_id,
        actor=audit_pb2.Actor(
            key_id=a.key_id, role=a.role, tenant_id=a.tenant_id, user_id=a.user_id
        ),
        changes=[
            audit_pb2.FieldChange(
                field=c.field,
                before=value_out(c.before),
                after=value_out(c.after),
                personal=c.personal,
            )
            for c in event.changes
        ],
        time=to_timestamp(event.time),
        request_id=event.request_id or request_id_var.get(),
    )


def adjustment_in(msg: audit_pb2.Adjustment) -> AuditEvent:
    a = msg.actor
    return AuditEvent(
        service=msg.service,
        resource=msg.resource,
        resource_id=msg.resource_id,
        action=msg.action,
        actor=Actor(a.key_id, a.role, a.tenant_id, a.user_id),
        tenant_id=msg.tenant_id,
        user_id=msg.user_id,
        changes=tuple(
            Change(c.field, value_in(c.before), value_in(c.after), c.personal) for c in msg.changes
        ),
        request_id=msg.request_id,
        time=msg.time.ToDatetime(tzinfo=UTC),
        event_id=msg.adjustment_id,
    )


def system_event_out(event: SystemEvent) -> audit_pb2.SystemEvent:
    details = struct_pb2.Struct()
    details.update(event.details)
    return audit_pb2.SystemEvent(
        event_id=event.event_id,
        service=event.service,
        event=event.event,
        severity=SEVERITY_OUT[event.severity],
        details=details,
        time=to_timestamp(event.time),
        instance=event.instance,
    )


def system_event_in(msg: audit_pb2.SystemEvent) -> SystemEvent:
    return SystemEvent(
        service=msg.service,
        event=msg.event,
        severity=SEVERITY_IN.get(msg.severity, Severity.INFO),
        details=_whole(json_format.MessageToDict(msg.details)),
        time=msg.time.ToDatetime(tzinfo=UTC),
        instance=msg.instance,
        event_id=msg.event_id,
    )


def to_json(message: Any) -> bytes:
    return json_format.MessageToJson(message, indent=None).encode()


def from_json(payload: bytes, message: Any) -> Any:
    """Parses ``payload`` into ``message``; ValueError when it is not that message."""
    try:
        return json_format.Parse(payload.decode(), message)
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        raise ValueError(str(exc)) from exc
