"""Plans, subscriptions and usage through a real gRPC server: who may do what,
the tenant rules, and replays of every admin mutation."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2

from llmgw.quota.v1 import quota_pb2 as R
from tests.integration.quota.conftest import (
    INTERNAL,
    Quota,
    bearer,
    new_plan,
    reason_of,
    reserve,
    subscribe,
)


async def _fails(call, code: grpc.StatusCode, reason: str = "") -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code, err.value.details()
    if reason:
        assert reason_of(err.value) == reason


async def test_who_may_manage_plans(quota: Quota) -> None:
    a, b = quota.new_tenant(), quota.new_tenant()
    user_key = a.user_key(str(uuid.uuid4()))
    glob = R.Plan(name="global-" + uuid.uuid4().hex[:6], monthly_request_limit=10)
    await _fails(
        quota.public.CreatePlan(R.CreatePlanRequest(plan=glob), metadata=bearer(a.admin_key)),
        grpc.StatusCode.PERMISSION_DENIED,
        "PLATFORM_ADMIN_REQUIRED",
    )
    await _fails(quota.public.CreatePlan(R.CreatePlanRequest(plan=glob)),
                 grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip
    global_id = await new_plan(quota, quota.platform_key, "", 10)
    a_plan = await new_plan(quota, a.admin_key, a.tenant_id, 5)
    other = R.Plan(tenant_id=a.tenant_id, name="x", monthly_request_limit=1)
    await _fails(
        quota.public.CreatePlan(R.CreatePlanRequest(plan=other), metadata=bearer(b.admin_key)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    got = await quota.public.GetPlan(
        R.GetPlanRequest(plan_id=global_id), metadata=bearer(b.admin_key)
    )
    assert got.plan.tenant_id == ""
    await _fails(
        quota.public.GetPlan(R.GetPlanRequest(plan_id=a_plan), metadata=bearer(b.admin_key)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await _fails(
        quota.public.GetPlan(R.GetPlanRequest(plan_id=a_plan), metadata=bearer(user_key)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await _fails(
        quota.public.GetPlan(R.GetPlanRequest(plan_id=str(uuid.uuid4())),
                             metadata=bearer(a.admin_key)),
        grpc.StatusCode.NOT_FOUND,
    )  # fmt: skip
    await _fails(
        quota.public.GetPlan(R.GetPlanRequest(plan_id="nope"), metadata=bearer(a.admin_key)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    listed = await quota.public.ListPlans(
        R.ListPlansRequest(tenant_id=a.tenant_id, page_size=500), metadata=bearer(a.admin_key)
    )
    ids = {p.plan_id for p in listed.plans}
    assert {a_plan, global_id} <= ids
    assert all(p.tenant_id in ("", a.tenant_id) for p in listed.plans)


async def test_update_and_delete_plan(quota: Quota) -> None:
    a = quota.new_tenant()
    plan_id = await new_plan(quota, a.admin_key, a.tenant_id, 5)
    upd = await quota.public.UpdatePlan(
        R.UpdatePlanRequest(
            plan=R.Plan(plan_id=plan_id, monthly_request_limit=1, name="ignored"),
            update_mask=field_mask_pb2.FieldMask(paths=["monthly_request_limit"]),
        ),
        metadata=bearer(a.admin_key),
    )
    assert upd.plan.monthly_request_limit == 1 and upd.plan.name != "ignored"
    sub = await subscribe(quota, a, plan_id)
    await reserve(quota, a, sub.user_id)
    # The new limit applies at once.
    await _fails(reserve(quota, a, sub.user_id), grpc.StatusCode.RESOURCE_EXHAUSTED)
    await _fails(
        quota.public.DeletePlan(R.DeletePlanRequest(plan_id=plan_id), metadata=bearer(a.admin_key)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "PLAN_IN_USE",
    )
    unused = await new_plan(quota, a.admin_key, a.tenant_id, 5)
    await quota.public.DeletePlan(R.DeletePlanRequest(plan_id=unused), metadata=bearer(a.admin_key))
    await _fails(
        quota.public.GetPlan(R.GetPlanRequest(plan_id=unused), metadata=bearer(a.admin_key)),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_subscription_rules(quota: Quota) -> None:
    a, b = quota.new_tenant(), quota.new_tenant()
    b_plan = await new_plan(quota, b.admin_key, b.tenant_id, 5)
    a_plan = await new_plan(quota, a.admin_key, a.tenant_id, 5)
    user = str(uuid.uuid4())
    await _fails(subscribe(quota, a, b_plan, user), grpc.StatusCode.PERMISSION_DENIED,
                 "PLAN_OF_ANOTHER_TENANT")  # fmt: skip
    await _fails(subscribe(quota, a, str(uuid.uuid4()), user), grpc.StatusCode.NOT_FOUND)
    sub = await subscribe(quota, a, a_plan, user)
    await _fails(subscribe(quota, a, a_plan, user), grpc.StatusCode.ALREADY_EXISTS,
                 "ACTIVE_SUBSCRIPTION_EXISTS")  # fmt: skip
    # Another tenant's admin may not touch it; its user may read it.
    req = R.GetSubscriptionRequest(tenant_id=a.tenant_id, subscription_id=sub.subscription_id)
    await _fails(quota.public.GetSubscription(req, metadata=bearer(b.admin_key)),
                 grpc.StatusCode.PERMISSION_DENIED)  # fmt: skip
    own = await quota.public.GetSubscription(req, metadata=bearer(a.user_key(user)))
    assert own.subscription.plan_id == a_plan
    stranger = a.user_key(str(uuid.uuid4()))
    await _fails(quota.public.GetSubscription(req, metadata=bearer(stranger)),
                 grpc.StatusCode.PERMISSION_DENIED)  # fmt: skip
    listed = await quota.public.ListSubscriptions(
        R.ListSubscriptionsRequest(tenant_id=a.tenant_id, active_only=True),
        metadata=bearer(a.admin_key),
    )
    assert [s.subscription_id for s in listed.subscriptions] == [sub.subscription_id]


async def test_concurrent_create_subscription_one_wins(quota: Quota) -> None:
    import asyncio

    a = quota.new_tenant()
    plan = await new_plan(quota, a.admin_key, a.tenant_id, 5)
    user = str(uuid.uuid4())
    results = await asyncio.gather(
        *(subscribe(quota, a, plan, user) for _ in range(8)), return_exceptions=True
    )
    ok = [r for r in results if isinstance(r, R.Subscription)]
    assert len(ok) == 1
    errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(errors) == 7
    assert all(r.code() == grpc.StatusCode.ALREADY_EXISTS for r in errors)


async def test_change_plan_keeps_usage_and_replays(quota: Quota) -> None:
    a = quota.new_tenant()
    small = await new_plan(quota, a.admin_key, a.tenant_id, 2)
    big = await new_plan(quota, quota.platform_key, "", 10)
    sub = await subscribe(quota, a, small)
    await reserve(quota, a, sub.user_id)
    await reserve(quota, a, sub.user_id)
    req = R.ChangeSubscriptionPlanRequest(
        tenant_id=a.tenant_id, subscription_id=sub.subscription_id, plan_id=big, request_id="chg-1"
    )
    first = await quota.public.ChangeSubscriptionPlan(req, metadata=bearer(a.admin_key))
    again = await quota.public.ChangeSubscriptionPlan(req, metadata=bearer(a.admin_key))
    assert first.subscription.plan_id == big and first.subscription.requests_used_this_month == 2
    assert (
        again.subscription.plan_id == big
        and again.subscription.update_time == first.subscription.update_time
    )
    third = await reserve(quota, a, sub.user_id)
    assert (third.used, third.limit) == (3, 10)
    usage = await quota.public.GetUsage(
        R.GetUsageRequest(tenant_id=a.tenant_id, user_id=sub.user_id), metadata=bearer(a.admin_key)
    )
    assert (usage.used, usage.limit, usage.remaining) == (3, 10, 7)


async def test_replays_of_admin_mutations(quota: Quota) -> None:
    a = quota.new_tenant()
    req = R.CreatePlanRequest(
        plan=R.Plan(tenant_id=a.tenant_id, name="idem", monthly_request_limit=3), request_id="p-1"
    )
    p1 = await quota.public.CreatePlan(req, metadata=bearer(a.admin_key))
    p2 = await quota.public.CreatePlan(req, metadata=bearer(a.admin_key))
    assert p1 == p2
    dup = R.CreatePlanRequest(plan=req.plan, request_id="p-2")
    await _fails(quota.public.CreatePlan(dup, metadata=bearer(a.admin_key)),
                 grpc.StatusCode.ALREADY_EXISTS, "PLAN_NAME_TAKEN")  # fmt: skip
    user = str(uuid.uuid4())
    s1 = await subscribe(quota, a, p1.plan.plan_id, user, request_id="s-1")
    s2 = await subscribe(quota, a, p1.plan.plan_id, user, request_id="s-1")
    assert s1 == s2
    end = R.EndSubscriptionRequest(
        tenant_id=a.tenant_id, subscription_id=s1.subscription_id, request_id="e-1"
    )
    e1 = await quota.public.EndSubscription(end, metadata=bearer(a.admin_key))
    quota.clock.advance(hours=1)
    e2 = await quota.public.EndSubscription(end, metadata=bearer(a.admin_key))
    assert e1.subscription.end_time == e2.subscription.end_time
    await _fails(
        quota.public.ChangeSubscriptionPlan(
            R.ChangeSubscriptionPlanRequest(
                tenant_id=a.tenant_id, subscription_id=s1.subscription_id,
                plan_id=p1.plan.plan_id,
            ),
            metadata=bearer(a.admin_key),
        ),
        grpc.StatusCode.FAILED_PRECONDITION, "SUBSCRIPTION_ENDED",
    )  # fmt: skip


async def test_tenant_usage_sums_its_users(quota: Quota) -> None:
    a = quota.new_tenant()
    plan = await new_plan(quota, a.admin_key, a.tenant_id, 4)
    subs = [await subscribe(quota, a, plan) for _ in range(3)]
    for s in subs[:2]:
        await reserve(quota, a, s.user_id)
    await reserve(quota, a, subs[0].user_id)
    usage = await quota.public.GetUsage(
        R.GetUsageRequest(tenant_id=a.tenant_id), metadata=bearer(a.admin_key)
    )
    assert (usage.used, usage.limit, usage.remaining) == (3, 12, 9)
    user_key = a.user_key(subs[0].user_id)
    mine = await quota.public.GetUsage(
        R.GetUsageRequest(tenant_id=a.tenant_id, user_id=subs[0].user_id),
        metadata=bearer(user_key),
    )
    assert mine.used == 2
    await _fails(
        quota.public.GetUsage(R.GetUsageRequest(tenant_id=a.tenant_id), metadata=bearer(user_key)),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await _fails(
        quota.public.GetUsage(
            R.GetUsageRequest(tenant_id=a.tenant_id, user_id=str(uuid.uuid4())),
            metadata=bearer(a.admin_key),
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert INTERNAL  # the internal credential is not a public credential
    await _fails(
        quota.public.GetUsage(R.GetUsageRequest(tenant_id=a.tenant_id), metadata=INTERNAL),
        grpc.StatusCode.UNAUTHENTICATED,
    )
