"""Helpers of the plan-limit tests: a plan with per-minute and token limits, Reserve with a
token hold, Settle with the provider's actual usage."""

from __future__ import annotations

import uuid

from llmgw.history.v1 import history_pb2
from llmgw.quota.v1 import quota_pb2
from tests.integration.quota.conftest import INTERNAL, Quota, Tenant, bearer, subscribe


async def limited_user(
    q: Quota,
    monthly: int = 1000,
    per_minute: int | None = None,
    tokens: int | None = None,
    models: tuple[str, ...] = (),
) -> tuple[Tenant, str]:
    tenant = q.new_tenant()
    plan = quota_pb2.Plan(
        tenant_id=tenant.tenant_id,
        name=f"limited-{uuid.uuid4().hex[:8]}",
        monthly_request_limit=monthly,
        allowed_models=list(models),
    )
    if per_minute is not None:
        plan.requests_per_minute_limit = per_minute
    if tokens is not None:
        plan.monthly_token_limit = tokens
    reply = await q.public.CreatePlan(
        quota_pb2.CreatePlanRequest(plan=plan), metadata=bearer(tenant.admin_key)
    )
    sub = await subscribe(q, tenant, reply.plan.plan_id)
    return tenant, sub.user_id


def reserve_request(
    tenant_id: str, user_id: str, base: int = 0, n: int = 1, max_tokens: int = 0, rid: str = ""
) -> quota_pb2.ReserveRequest:
    return quota_pb2.ReserveRequest(
        request_id=rid or uuid.uuid4().hex,
        tenant_id=tenant_id,
        user_id=user_id,
        prompt_token_bound=base,
        choices=n,
        max_tokens=max_tokens,
    )


async def hold(
    q: Quota, tenant: Tenant, user_id: str, base: int = 0, n: int = 1, max_tokens: int = 0
) -> quota_pb2.Reservation:
    req = reserve_request(tenant.tenant_id, user_id, base, n, max_tokens)
    return (await q.internal.Reserve(req, metadata=INTERNAL)).reservation


def settle_tokens(
    tenant_id: str, user_id: str, rid: str, prompt: int, completion: int, commit: bool = True
) -> quota_pb2.SettleRequest:
    return quota_pb2.SettleRequest(
        request_id=rid,
        action=quota_pb2.SETTLE_ACTION_COMMIT if commit else quota_pb2.SETTLE_ACTION_RELEASE,
        interaction=history_pb2.Interaction(
            interaction_id=rid,
            tenant_id=tenant_id,
            user_id=user_id,
            question="q",
            answer="a",
            status=history_pb2.INTERACTION_STATUS_OK
            if commit
            else history_pb2.INTERACTION_STATUS_ERROR,
            metadata=history_pb2.InteractionMetadata(
                tokens_used=prompt + completion,
                prompt_tokens=prompt,
                completion_tokens=completion,
            ),
        ),
    )


async def charge(
    q: Quota, tenant: Tenant, user_id: str, rid: str, prompt: int, completion: int
) -> quota_pb2.Reservation:
    req = settle_tokens(tenant.tenant_id, user_id, rid, prompt, completion)
    return (await q.internal.Settle(req, metadata=INTERNAL)).reservation


async def usage(q: Quota, tenant: Tenant, user_id: str) -> quota_pb2.GetUsageResponse:
    return await q.public.GetUsage(
        quota_pb2.GetUsageRequest(tenant_id=tenant.tenant_id, user_id=user_id),
        metadata=bearer(tenant.admin_key),
    )
