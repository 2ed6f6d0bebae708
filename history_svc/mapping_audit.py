"""proto <-> domain for the audit trail and system events (gateway_common.audit_proto holds
the conversions the writers share)."""

from __future__ import annotations

from gateway_common.audit import AuditEvent
from gateway_common.audit_proto import (
    SEVERITY_IN,
    adjustment_in,
    adjustment_out,
    system_event_in,
    system_event_out,
)
from gateway_common.protoconv import from_timestamp
from gateway_common.system_events import SystemEvent
from history_svc.audit_domain import AdjustmentFilter, SystemEventFilter
from history_svc.domain import Outcome, RecordResult
from llmgw.history.v1 import audit_pb2 as apb

__all__ = ["adjustment_out", "system_event_out"]

_MAX_ID = 200
_OUTCOME_OUT = {
    Outcome.CREATED: apb.ENTRY_OUTCOME_CREATED,
    Outcome.DUPLICATE: apb.ENTRY_OUTCOME_DUPLICATE,
    Outcome.REJECTED: apb.ENTRY_OUTCOME_REJECTED,
}


def _refused(entry_id: str, why: str) -> RecordResult:
    return RecordResult(entry_id, Outcome.REJECTED, "INVALID_ENTRY", why)


def adjustment_entry(msg: apb.Adjustment) -> AuditEvent | RecordResult:
    """The adjustment to store, or its refusal when it cannot be read."""
    if not msg.adjustment_id or len(msg.adjustment_id) > _MAX_ID:
        return _refused(msg.adjustment_id, "adjustment_id: 1 to 200 characters required")
    if not (msg.resource and msg.action and msg.HasField("time")):
        return _refused(msg.adjustment_id, "resource, action and time are required")
    try:
        return adjustment_in(msg)
    except (ValueError, OverflowError) as exc:
        return _refused(msg.adjustment_id, str(exc)[:200])


def event_entry(msg: apb.SystemEvent) -> SystemEvent | RecordResult:
    if not msg.event_id or len(msg.event_id) > _MAX_ID:
        return _refused(msg.event_id, "event_id: 1 to 200 characters required")
    if not (msg.service and msg.event and msg.HasField("time")) or msg.severity not in SEVERITY_IN:
        return _refused(msg.event_id, "service, event, severity and time are required")
    try:
        return system_event_in(msg)
    except (ValueError, OverflowError) as exc:
        return _refused(msg.event_id, str(exc)[:200])


def result_out(result: RecordResult) -> apb.EntryResult:
    return apb.EntryResult(
        id=result.interaction_id,
        outcome=_OUTCOME_OUT.get(result.outcome, apb.ENTRY_OUTCOME_REJECTED),
        reason=result.reason,
        message=result.message,
    )


def adjustment_filter(req: apb.ListAdjustmentsRequest) -> AdjustmentFilter:
    return AdjustmentFilter(
        tenant_id=req.tenant_id[:_MAX_ID],
        user_id=req.user_id[:_MAX_ID],
        resource=req.resource[:_MAX_ID],
        action=req.action[:_MAX_ID],
        resource_id=req.resource_id[:_MAX_ID],
        start=from_timestamp(req, "start_time"),
        end=from_timestamp(req, "end_time"),
    )


def event_filter(req: apb.ListSystemEventsRequest) -> SystemEventFilter:
    return SystemEventFilter(
        service=req.service[:_MAX_ID],
        event=req.event[:_MAX_ID],
        min_severity=SEVERITY_IN.get(req.min_severity),
        start=from_timestamp(req, "start_time"),
        end=from_timestamp(req, "end_time"),
    )
