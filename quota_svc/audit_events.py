"""quota's audit events (gateway_common.audit): plans and subscriptions. A plan change names
both plans with their limits; an end names the end time and the period's usage then."""

from __future__ import annotations

from typing import Any

from gateway_common import audit
from quota_svc.domain import Plan, Subscription

SERVICE = "quota"


def plan_fields(plan: Plan | None, plan_id: str = "") -> dict[str, Any]:
    """A plan as an event shows it: id, name and its limits (a plan deleted since: its id)."""
    if plan is None:
        return {"plan_id": plan_id}
    return {
        "plan_id": plan.plan_id,
        "name": plan.name,
        "monthly_request_limit": plan.monthly_request_limit,
        "requests_per_minute_limit": plan.requests_per_minute_limit,
        "monthly_token_limit": plan.monthly_token_limit,
        "allowed_models": list(plan.allowed_models),
        "description": plan.description,
        "tenant_id": plan.tenant_id,
    }


def subscription_fields(sub: Subscription, plan: Plan | None) -> dict[str, Any]:
    return {
        "user_id": sub.user_id,
        "plan": plan_fields(plan, sub.plan_id),
        "start_time": audit.plain(sub.start_time),
        "end_time": audit.plain(sub.end_time),
    }


event = audit.Events(SERVICE)
