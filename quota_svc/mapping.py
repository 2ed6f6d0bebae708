"""Proto <-> domain for quota."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway_common.errors import InvalidArgument
from gateway_common.outbox import DeadLetter
from gateway_common.protoconv import to_timestamp as ts
from llmgw.history.v1 import history_pb2
from llmgw.quota.v1 import quota_pb2
from quota_svc.domain import (
    NewPlan,
    Plan,
    Reservation,
    ReservationState,
    SubscriptionView,
    Usage,
)

_STATES = {
    ReservationState.RESERVED: quota_pb2.RESERVATION_STATE_RESERVED,
    ReservationState.COMMITTED: quota_pb2.RESERVATION_STATE_COMMITTED,
    ReservationState.RELEASED: quota_pb2.RESERVATION_STATE_RELEASED,
    ReservationState.EXPIRED: quota_pb2.RESERVATION_STATE_EXPIRED,
}


def new_plan(pb: quota_pb2.Plan) -> NewPlan:
    return NewPlan(
        tenant_id=pb.tenant_id,
        name=pb.name,
        monthly_request_limit=pb.monthly_request_limit,
        description=pb.description,
        requests_per_minute_limit=_optional(pb, "requests_per_minute_limit"),
        monthly_token_limit=_optional(pb, "monthly_token_limit"),
        allowed_models=tuple(pb.allowed_models),
    )


def plan_changes(pb: quota_pb2.Plan, paths: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": pb.name,
        "description": pb.description,
        "monthly_request_limit": pb.monthly_request_limit,
        "requests_per_minute_limit": _optional(pb, "requests_per_minute_limit"),
        "monthly_token_limit": _optional(pb, "monthly_token_limit"),
        "allowed_models": tuple(pb.allowed_models),
    }
    return {p: values.get(p) for p in paths}


def plan(value: Plan) -> quota_pb2.Plan:
    return quota_pb2.Plan(
        plan_id=value.plan_id,
        tenant_id=value.tenant_id,
        name=value.name,
        monthly_request_limit=value.monthly_request_limit,
        description=value.description,
        create_time=ts(value.create_time),
        update_time=ts(value.update_time),
        requests_per_minute_limit=value.requests_per_minute_limit,
        monthly_token_limit=value.monthly_token_limit,
        allowed_models=list(value.allowed_models),
    )


def _optional(pb: quota_pb2.Plan, name: str) -> int | None:
    return int(getattr(pb, name)) if pb.HasField(name) else None  # type: ignore[arg-type]


def tokens_of(record: history_pb2.Interaction) -> int:
    """The tokens an interaction used, as the provider reported them."""
    md = record.metadata
    return max(md.tokens_used, md.prompt_tokens + md.completion_tokens, 0)


def subscription(view: SubscriptionView) -> quota_pb2.Subscription:
    sub = view.subscription
    out = quota_pb2.Subscription(
        subscription_id=sub.subscription_id,
        tenant_id=sub.tenant_id,
        user_id=sub.user_id,
        plan_id=sub.plan_id,
        start_time=ts(sub.start_time),
        requests_used_this_month=view.used,
        period_start=ts(view.period.start),
        period_end=ts(view.period.end),
        create_time=ts(sub.create_time),
        update_time=ts(sub.update_time),
    )
    if sub.end_time is not None:
        out.end_time.CopyFrom(ts(sub.end_time))
    return out


def reservation(value: Reservation) -> quota_pb2.Reservation:
    return quota_pb2.Reservation(
        request_id=value.request_id,
        subscription_id=value.subscription_id,
        state=_STATES.get(value.state, quota_pb2.RESERVATION_STATE_UNSPECIFIED),
        used=value.used,
        limit=value.limit,
        remaining=value.remaining,
        period_start=ts(value.period.start),
        period_end=ts(value.period.end),
        expire_time=ts(value.expires)
        if value.expires and value.state is ReservationState.RESERVED
        else None,
        minute_limit=value.minute_limit,
        minute_used=value.minute_used,
        minute_reset=ts(value.minute_reset) if value.minute_reset else None,
        token_limit=value.token_limit,
        tokens_used=value.tokens_used,
        tokens_reserved=value.tokens_reserved,
        max_tokens=value.max_tokens,
    )


def expired_record(value: Reservation, created: datetime) -> bytes:
    """The history record of a reservation nobody settled: an error, charged nothing."""
    return history_pb2.Interaction(
        interaction_id=value.request_id,
        tenant_id=value.tenant_id,
        user_id=value.user_id,
        subscription_id=value.subscription_id,
        timestamp=ts(created),
        status=history_pb2.INTERACTION_STATUS_ERROR,
        error_reason=value.reason or "RESERVATION_EXPIRED",
        request_id=value.request_id,
    ).SerializeToString()


def dead_letter(value: DeadLetter) -> quota_pb2.DeadLetter:
    return quota_pb2.DeadLetter(
        id=value.id,
        tenant_id=value.tenant_id,
        user_id=value.user_id,
        attempts=value.attempts,
        failure_class=value.failure_class,
        last_error=value.last_error,
        create_time=ts(value.created_at),
        state=quota_pb2.DELIVERY_STATE_DEAD,
    )


def usage(value: Usage) -> quota_pb2.GetUsageResponse:
    return quota_pb2.GetUsageResponse(
        used=value.used,
        limit=value.limit,
        remaining=value.remaining,
        period_start=ts(value.period.start),
        period_end=ts(value.period.end),
        tokens_used=value.tokens_used,
        token_limit=value.token_limit,
        tokens_remaining=value.tokens_remaining,
    )


_ACTIONS = {quota_pb2.SETTLE_ACTION_COMMIT: True, quota_pb2.SETTLE_ACTION_RELEASE: False}


def settle_action(action: quota_pb2.SettleAction.ValueType) -> bool:
    """True for commit, False for release; anything else is INVALID_ARGUMENT."""
    try:
        return _ACTIONS[action]
    except KeyError:
        raise InvalidArgument.field("action", "must be COMMIT or RELEASE") from None


def stored_record(record: bytes | None) -> history_pb2.Interaction | None:
    return history_pb2.Interaction.FromString(record) if record is not None else None
