"""CreateSubscription binds only a user of the tenant, as identity says, through a real
quota server (fake memberships), and through the real identity adapter when identity is down."""

from __future__ import annotations

import uuid

import grpc
import pytest

from gateway_common.principal import Principal, Role
from llmgw.quota.v1 import quota_pb2 as R
from llmgw.quota.v1 import quota_pb2_grpc
from quota_svc.bootstrap import build
from quota_svc.config import QuotaSettings
from tests.integration.quota.conftest import (
    FakeAuthenticator,
    Quota,
    bearer,
    new_plan,
    reason_of,
)
from tests.support import free_port, running_server


async def _refused(call: object) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value.code(), reason_of(err.value), err.value.details() or ""


async def test_a_user_outside_the_tenant_is_not_found_whatever_it_subscribes(quota: Quota):
    a, b = quota.new_tenant(), quota.new_tenant()
    a_plan = await new_plan(quota, a.admin_key, a.tenant_id, 5)
    b_plan = await new_plan(quota, b.admin_key, b.tenant_id, 5)
    b_user, b_subscribed = str(uuid.uuid4()), str(uuid.uuid4())
    quota.members.pairs |= {(b.tenant_id, b_user), (b.tenant_id, b_subscribed)}
    await quota.public.CreateSubscription(
        R.CreateSubscriptionRequest(tenant_id=b.tenant_id, user_id=b_subscribed, plan_id=b_plan),
        metadata=bearer(b.admin_key),
    )
    answers = [
        await _refused(
            quota.public.CreateSubscription(
                R.CreateSubscriptionRequest(tenant_id=a.tenant_id, user_id=u, plan_id=a_plan),
                metadata=bearer(a.admin_key),
            )
        )
        for u in (b_user, b_subscribed, str(uuid.uuid4()))
    ]
    assert (
        answers
        == [(grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND", "no such user in this tenant")] * 3
    )
    reply = await quota.public.CreateSubscription(  # B's own user is still free
        R.CreateSubscriptionRequest(tenant_id=b.tenant_id, user_id=b_user, plan_id=b_plan),
        metadata=bearer(b.admin_key),
    )
    assert reply.subscription.user_id == b_user


async def test_identity_down_is_unavailable(quota_settings: QuotaSettings):
    down = quota_settings.model_copy(update={"identity_target": f"127.0.0.1:{free_port()}"})
    auth = FakeAuthenticator()
    tenant = str(uuid.uuid4())
    auth.keys["admin"] = Principal(Role.TENANT_ADMIN, tenant, key_id="admin")
    spec = build(down, authenticator=auth)  # memberships asked of identity, which is down
    async with running_server(down, spec) as (_, channel):
        req = R.CreateSubscriptionRequest(
            tenant_id=tenant, user_id=str(uuid.uuid4()), plan_id=str(uuid.uuid4())
        )
        code, reason, _ = await _refused(
            quota_pb2_grpc.QuotaServiceStub(channel).CreateSubscription(
                req, metadata=bearer("admin"), timeout=5
            )
        )
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "IDENTITY_UNAVAILABLE")
