"""Least privilege between the services and tenant membership in quota, on the running
suite (four processes, each presenting its own service credential)."""

from __future__ import annotations

import uuid

import grpc
import pytest

from gateway_common.service_auth import SERVICE_TOKEN
from gateway_common.status import error_info
from llmgw.history.v1 import history_pb2, history_pb2_grpc
from llmgw.identity.v1 import identity_pb2 as ipb
from llmgw.identity.v1 import identity_pb2_grpc as irpc
from llmgw.quota.v1 import quota_pb2, quota_pb2_grpc
from tests.e2e.conftest import Suite
from tests.e2e.world import Tenant, bearer, make_tenant
from tests.support import as_service

pytestmark = pytest.mark.e2e
C = grpc.StatusCode


async def refusal(call: object) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    info = error_info(caught.value)
    return caught.value.code(), info.reason if info else "", caught.value.details() or ""


async def admin_key(suite: Suite, tenant_id: str) -> str:
    reply = await irpc.IdentityServiceStub(suite.channel("identity")).CreateApiKey(
        ipb.CreateApiKeyRequest(
            tenant_id=tenant_id, role=ipb.ROLE_TENANT_ADMIN, display_name="admin"
        ),
        metadata=bearer(suite.admin_key),
    )
    return str(reply.secret)


async def new_user(suite: Suite, tenant_id: str) -> str:
    reply = await irpc.IdentityServiceStub(suite.channel("identity")).CreateUser(
        ipb.CreateUserRequest(user=ipb.User(tenant_id=tenant_id, name="second")),
        metadata=bearer(suite.admin_key),
    )
    return str(reply.user.user_id)


async def new_plan(quota: quota_pb2_grpc.QuotaServiceStub, tenant_id: str, key: str) -> str:
    plan = quota_pb2.Plan(tenant_id=tenant_id, name=f"p-{uuid.uuid4().hex[:6]}")
    plan.monthly_request_limit = 10
    reply = await quota.CreatePlan(quota_pb2.CreatePlanRequest(plan=plan), metadata=bearer(key))
    return str(reply.plan.plan_id)


def subscribe(tenant_id: str, user_id: str, plan_id: str) -> quota_pb2.CreateSubscriptionRequest:
    return quota_pb2.CreateSubscriptionRequest(
        tenant_id=tenant_id, user_id=user_id, plan_id=plan_id
    )


async def test_a_tenant_admin_cannot_subscribe_another_tenants_user(suite: Suite) -> None:
    a, b = await make_tenant(suite), await make_tenant(suite)
    a_key, b_key = await admin_key(suite, a.tenant_id), await admin_key(suite, b.tenant_id)
    quota = quota_pb2_grpc.QuotaServiceStub(suite.channel("quota"))
    a_plan, b_plan = (
        await new_plan(quota, a.tenant_id, a_key),
        await new_plan(quota, b.tenant_id, b_key),
    )
    b_fresh = await new_user(suite, b.tenant_id)  # B's user, not subscribed yet
    answers = [
        await refusal(quota.CreateSubscription(subscribe(a.tenant_id, user, a_plan), metadata=md))
        for user, md in (
            (b_fresh, bearer(a_key)),
            (b.user_id, bearer(a_key)),  # subscribed in B: nothing tells it apart
            (str(uuid.uuid4()), bearer(a_key)),  # nobody
            (b_fresh, bearer(suite.admin_key)),  # the platform admin gets the same answer
        )
    ]
    assert answers == [(C.NOT_FOUND, "USER_NOT_FOUND", "no such user in this tenant")] * 4
    # B's admin still subscribes its own user, and that user chats.
    reply = await quota.CreateSubscription(
        subscribe(b.tenant_id, b_fresh, b_plan), metadata=bearer(b_key)
    )
    assert reply.subscription.user_id == b_fresh
    await b.chat("hello")  # B's first user was never disturbed either


async def test_only_llm_resolves_a_model(suite: Suite) -> None:
    t: Tenant = await make_tenant(suite)
    internal = irpc.IdentityInternalServiceStub(suite.channel("identity"))
    req = ipb.ResolveModelRequest(tenant_id=t.tenant_id, model_name=t.model)
    resolved = await internal.ResolveModel(req, metadata=as_service("llm"))
    assert [d.credential for d in resolved.deployments] == [t.credential]
    for caller in ("quota", "history", "identity"):
        code, reason, _ = await refusal(internal.ResolveModel(req, metadata=as_service(caller)))
        assert (code, reason) == (C.PERMISSION_DENIED, "CALLER_NOT_ALLOWED"), caller
    for md in ((), ((SERVICE_TOKEN, "guessed"),), bearer(suite.admin_key)):
        code, reason, _ = await refusal(internal.ResolveModel(req, metadata=md))
        assert (code, reason) == (C.UNAUTHENTICATED, "INTERNAL_ONLY")


async def test_each_internal_rpc_answers_its_own_caller_only(suite: Suite) -> None:
    t = await make_tenant(suite)
    identity = irpc.IdentityInternalServiceStub(suite.channel("identity"))
    quota = quota_pb2_grpc.QuotaInternalServiceStub(suite.channel("quota"))
    history = history_pb2_grpc.HistoryInternalServiceStub(suite.channel("history"))
    member = ipb.CheckMembershipRequest(tenant_id=t.tenant_id, user_id=t.user_id)
    await identity.CheckMembership(member, metadata=as_service("quota"))
    reserve = quota_pb2.ReserveRequest(
        request_id=uuid.uuid4().hex, tenant_id=t.tenant_id, user_id=t.user_id
    )
    refused = [
        identity.CheckMembership(member, metadata=as_service("llm")),
        quota.Reserve(reserve, metadata=as_service("history")),
        quota.Reserve(reserve, metadata=as_service("quota")),
        quota.GetSettlement(
            quota_pb2.GetSettlementRequest(request_id=reserve.request_id),
            metadata=as_service("identity"),
        ),
        history.ListErasures(history_pb2.ListErasuresRequest(), metadata=as_service("llm")),
        history.RecordInteractions(
            history_pb2.RecordInteractionsRequest(), metadata=as_service("history")
        ),
    ]
    for call in refused:
        code, reason, _ = await refusal(call)
        assert (code, reason) == (C.PERMISSION_DENIED, "CALLER_NOT_ALLOWED")
    assert await t.used() == 0  # nothing refused was counted
