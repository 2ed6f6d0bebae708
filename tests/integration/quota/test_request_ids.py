"""request_id through a real quota server (finding 3): scoped by tenant and method, bound
to the request's content. Another tenant's id never blocks, refuses or answers with the
first tenant's data; the same id with other content is REQUEST_ID_REUSED."""

from __future__ import annotations

import uuid

import grpc
import pytest

from llmgw.quota.v1 import quota_pb2 as R
from tests.integration.quota.conftest import Quota, bearer, new_plan, reason_of, subscribe


async def _reused(call) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert reason_of(err.value) == "REQUEST_ID_REUSED"


def _plan(tenant_id: str, rid: str, limit: int = 5) -> R.CreatePlanRequest:
    plan = R.Plan(
        tenant_id=tenant_id, name=f"p-{uuid.uuid4().hex[:8]}", monthly_request_limit=limit
    )
    return R.CreatePlanRequest(plan=plan, request_id=rid)


async def test_two_tenants_use_the_same_request_id_for_every_mutation(quota: Quota) -> None:
    a, b = quota.new_tenant(), quota.new_tenant()
    rid = f"shared-{uuid.uuid4().hex[:6]}"
    pa = (await quota.public.CreatePlan(_plan(a.tenant_id, rid), metadata=bearer(a.admin_key))).plan
    pb = (await quota.public.CreatePlan(_plan(b.tenant_id, rid), metadata=bearer(b.admin_key))).plan
    assert pa.plan_id != pb.plan_id and pb.tenant_id == b.tenant_id
    sa = await subscribe(quota, a, pa.plan_id, request_id=rid)
    sb = await subscribe(quota, b, pb.plan_id, request_id=rid)
    assert sa.subscription_id != sb.subscription_id and sb.tenant_id == b.tenant_id
    bigger = {t.tenant_id: await new_plan(quota, t.admin_key, t.tenant_id, 50) for t in (a, b)}
    for tenant, sub in ((a, sa), (b, sb)):
        changed = await quota.public.ChangeSubscriptionPlan(
            R.ChangeSubscriptionPlanRequest(
                tenant_id=tenant.tenant_id, subscription_id=sub.subscription_id,
                plan_id=bigger[tenant.tenant_id], request_id=rid,
            ),
            metadata=bearer(tenant.admin_key),
        )  # fmt: skip
        assert changed.subscription.subscription_id == sub.subscription_id
        assert changed.subscription.plan_id == bigger[tenant.tenant_id]
        ended = await quota.public.EndSubscription(
            R.EndSubscriptionRequest(
                tenant_id=tenant.tenant_id, subscription_id=sub.subscription_id, request_id=rid
            ),
            metadata=bearer(tenant.admin_key),
        )
        assert ended.subscription.subscription_id == sub.subscription_id


async def test_same_id_same_content_replays_other_content_is_refused(quota: Quota) -> None:
    a = quota.new_tenant()
    rid = f"p-{uuid.uuid4().hex[:6]}"
    req = _plan(a.tenant_id, rid)
    first = await quota.public.CreatePlan(req, metadata=bearer(a.admin_key))
    assert await quota.public.CreatePlan(req, metadata=bearer(a.admin_key)) == first
    other = R.CreatePlanRequest(plan=R.Plan(**{**_fields(req.plan), "monthly_request_limit": 6}))
    other.request_id = rid
    await _reused(quota.public.CreatePlan(other, metadata=bearer(a.admin_key)))

    plan_id, user = first.plan.plan_id, str(uuid.uuid4())
    sub = await subscribe(quota, a, plan_id, user, request_id=rid)
    assert await subscribe(quota, a, plan_id, user, request_id=rid) == sub
    stranger = str(uuid.uuid4())  # another user of the tenant: the content differs
    quota.members.pairs.add((a.tenant_id, stranger))
    await _reused(
        quota.public.CreateSubscription(
            R.CreateSubscriptionRequest(
                tenant_id=a.tenant_id, user_id=stranger, plan_id=plan_id, request_id=rid
            ),
            metadata=bearer(a.admin_key),
        )
    )

    bigger = await new_plan(quota, a.admin_key, a.tenant_id, 50)
    biggest = await new_plan(quota, a.admin_key, a.tenant_id, 60)
    change = R.ChangeSubscriptionPlanRequest(
        tenant_id=a.tenant_id, subscription_id=sub.subscription_id, plan_id=bigger, request_id=rid
    )
    changed = await quota.public.ChangeSubscriptionPlan(change, metadata=bearer(a.admin_key))
    again = await quota.public.ChangeSubscriptionPlan(change, metadata=bearer(a.admin_key))
    assert again.subscription.plan_id == changed.subscription.plan_id == bigger
    change.plan_id = biggest
    await _reused(quota.public.ChangeSubscriptionPlan(change, metadata=bearer(a.admin_key)))


def _fields(plan: R.Plan) -> dict[str, object]:
    return {"tenant_id": plan.tenant_id, "name": plan.name, "monthly_request_limit": 5}
