"""The audit trail (history's ListAdjustments) and system events (ListSystemEvents)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import timestamp_pb2

from gatewayctl.admin import Result, pages, principal_of
from gatewayctl.client import Session
from llmgw.history.v1 import audit_pb2 as apb
from llmgw.history.v1 import history_pb2_grpc as hrpc

AUDIT_COLS = ["time", "service", "resource", "action", "resource_id", "user_id", "actor", "changes"]
EVENT_COLS = ["time", "service", "event", "severity", "instance", "details"]
SEVERITIES = {
    "info": apb.SEVERITY_INFO,
    "warning": apb.SEVERITY_WARNING,
    "error": apb.SEVERITY_ERROR,
}


def _since(days: float) -> timestamp_pb2.Timestamp | None:
    if days <= 0:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(datetime.now(UTC) - timedelta(days=days))
    return ts


def _compact(row: dict[str, Any]) -> dict[str, Any]:
    actor = row.get("actor", {})
    row["actor"] = f"{actor.get('role', '')}:{actor.get('key_id', '')}"
    row["changes"] = {
        c.get("field", ""): [c.get("before"), c.get("after")] for c in row.get("changes", [])
    }
    return row


def audit_list(s: Session, a: argparse.Namespace) -> Result:
    """Who changed what, oldest first: a tenant admin sees its tenant, a platform admin the
    tenant given (or every one without --tenant)."""
    st = hrpc.HistoryServiceStub(s.channel("history"))
    tenant = a.tenant or (principal_of(s).tenant_id if not a.all_tenants else "")
    req = apb.ListAdjustmentsRequest(
        tenant_id=tenant,
        user_id=a.user,
        resource=a.resource,
        action=a.action_filter,
        resource_id=a.resource_id,
        start_time=_since(a.days),
    )
    rows = pages(s, st.ListAdjustments, req, "adjustments", a)[0]
    if not a.json:
        rows = [_compact(r) for r in rows]
    return rows, AUDIT_COLS


def system_events_list(s: Session, a: argparse.Namespace) -> Result:
    """System events (platform admins), oldest first."""
    st = hrpc.HistoryServiceStub(s.channel("history"))
    req = apb.ListSystemEventsRequest(
        service=a.service,
        event=a.event,
        min_severity=SEVERITIES.get(a.min_severity, apb.SEVERITY_UNSPECIFIED),
        start_time=_since(a.days),
    )
    return pages(s, st.ListSystemEvents, req, "events", a)[0], EVENT_COLS


def add_commands(leaf: Any, group: Any, listing: Any) -> None:
    g = group("audit", "the audit trail: who changed what (historico_ajustes)")
    p = leaf(g, "list", audit_list, "list admin changes, oldest first")
    p.add_argument("--tenant", default="", help="default: the key's own tenant")
    p.add_argument("--all-tenants", action="store_true", help="platform admin: every tenant")
    p.add_argument("--user", default="", help="only changes about this user")
    p.add_argument("--resource", default="", help="tenant, user, api_key, plan, subscription...")
    p.add_argument("--action", dest="action_filter", default="", help="created, plan_changed...")
    p.add_argument("--resource-id", default="")
    p.add_argument("--days", type=float, default=0, help="only the last N days")
    listing(p)
    g = group("system-events", "system events for ops (logs_sistema, platform admin)")
    p = leaf(g, "list", system_events_list, "list system events, oldest first")
    p.add_argument("--service", default="")
    p.add_argument("--event", default="")
    p.add_argument("--min-severity", choices=sorted(SEVERITIES), default="")
    p.add_argument("--days", type=float, default=0, help="only the last N days")
    listing(p)
