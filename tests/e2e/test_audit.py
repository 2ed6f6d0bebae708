"""The audit trail end to end (issue 21): every admin mutation in identity, quota and
history gives exactly one historico_ajustes event with its before and after, delivered
through the services' outboxes; tenant admins read only their own tenant's; an outage of
history blocks no admin call and loses or doubles no event; no secret in any event."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, json_format

from llmgw.history.v1 import audit_pb2 as apb
from llmgw.history.v1 import history_pb2, history_pb2_grpc
from llmgw.identity.v1 import identity_pb2 as ipb
from llmgw.identity.v1 import identity_pb2_grpc as irpc
from llmgw.quota.v1 import quota_pb2 as qpb
from llmgw.quota.v1 import quota_pb2_grpc as qrpc
from tests.e2e.conftest import Suite, running_suite, suite_environment
from tests.e2e.world import bearer, make_tenant

# make_tenant's mutations: tenant, user, plan, subscription, model, config, deployment, user key.
MADE = 8


@pytest.fixture(scope="module")
async def world(log_dir: Path) -> AsyncIterator[Suite]:
    with suite_environment() as env:
        async with running_suite(env, log_dir) as suite:
            yield suite


def _stubs(s: Suite) -> tuple[irpc.IdentityServiceStub, qrpc.QuotaServiceStub, Any]:
    return (
        irpc.IdentityServiceStub(s.channel("identity")),
        qrpc.QuotaServiceStub(s.channel("quota")),
        history_pb2_grpc.HistoryServiceStub(s.channel("history")),
    )


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


async def adjustments(s: Suite, key: str = "", **filters: Any) -> list[apb.Adjustment]:
    hist = history_pb2_grpc.HistoryServiceStub(s.channel("history"))
    out: list[apb.Adjustment] = []
    token = ""
    while True:
        reply = await hist.ListAdjustments(
            apb.ListAdjustmentsRequest(page_size=100, page_token=token, **filters),
            metadata=bearer(key or s.admin_key),
            timeout=10,
        )
        out += reply.adjustments
        token = reply.next_page_token
        if not token:
            return out


async def settled(s: Suite, want: int, timeout: float = 30.0, **filters: Any) -> list[Any]:
    """The events matching ``filters`` once ``want`` are there, then a moment more (to see
    any extra one arrive)."""
    deadline = asyncio.get_running_loop().time() + timeout
    found = await adjustments(s, **filters)
    while len(found) < want and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        found = await adjustments(s, **filters)
    await asyncio.sleep(0.5)
    return await adjustments(s, **filters)


def values(change: apb.FieldChange) -> tuple[Any, Any]:
    def one(v: Any) -> Any:
        return json_format.MessageToDict(v) if v.WhichOneof("kind") else None

    return one(change.before), one(change.after)


def changes_of(event: apb.Adjustment) -> dict[str, tuple[Any, Any]]:
    return {c.field: values(c) for c in event.changes}


async def tenant_admin_key(s: Suite, tenant: str) -> tuple[str, str]:
    idn, _, _ = _stubs(s)
    reply = await idn.CreateApiKey(
        ipb.CreateApiKeyRequest(tenant_id=tenant, role=ipb.ROLE_TENANT_ADMIN, display_name="ta"),
        metadata=bearer(s.admin_key),
    )
    return reply.secret, reply.api_key.key_id


async def test_each_admin_mutation_gives_one_event(world: Suite) -> None:
    s, admin = world, bearer(world.admin_key)
    idn, quo, hist = _stubs(s)
    tag = uuid.uuid4().hex[:6]
    tenant = (
        await idn.CreateTenant(
            ipb.CreateTenantRequest(tenant=ipb.Tenant(name=f"audit {tag}")), metadata=admin
        )
    ).tenant.tenant_id
    await idn.UpdateTenant(
        ipb.UpdateTenantRequest(
            tenant=ipb.Tenant(tenant_id=tenant, contact="ops@x"), update_mask=mask("contact")
        ),
        metadata=admin,
    )
    user = (
        await idn.CreateUser(
            ipb.CreateUserRequest(
                user=ipb.User(tenant_id=tenant, name="Ana", email="ana@x.example")
            ),
            metadata=admin,
        )
    ).user.user_id
    await idn.UpdateUser(
        ipb.UpdateUserRequest(
            user=ipb.User(tenant_id=tenant, user_id=user, email="ana@y.example"),
            update_mask=mask("email"),
        ),
        metadata=admin,
    )
    key = await idn.CreateApiKey(
        ipb.CreateApiKeyRequest(
            tenant_id=tenant, user_id=user, role=ipb.ROLE_USER, display_name="k"
        ),
        metadata=admin,
    )
    await idn.RevokeApiKey(ipb.RevokeApiKeyRequest(key_id=key.api_key.key_id), metadata=admin)
    model = (
        await idn.CreateModel(
            ipb.CreateModelRequest(
                model=ipb.Model(
                    tenant_id=tenant,
                    name=f"m-{tag}",
                    provider="fake",
                    access_type=ipb.ACCESS_TYPE_CLOUD,
                )
            ),
            metadata=admin,
        )
    ).model.model_id
    await idn.UpdateModel(
        ipb.UpdateModelRequest(
            model=ipb.Model(model_id=model, description="d"), update_mask=mask("description")
        ),
        metadata=admin,
    )
    config = (
        await idn.CreateModelConfig(
            ipb.CreateModelConfigRequest(config=ipb.ModelConfig(tenant_id=tenant, model_id=model)),
            metadata=admin,
        )
    ).config.config_id
    await idn.UpdateModelConfig(
        ipb.UpdateModelConfigRequest(
            config=ipb.ModelConfig(tenant_id=tenant, config_id=config, token_limit=64),
            update_mask=mask("token_limit"),
        ),
        metadata=admin,
    )
    deployment = (
        await idn.CreateModelDeployment(
            ipb.CreateModelDeploymentRequest(
                deployment=ipb.ModelDeployment(
                    tenant_id=tenant, config_id=config, base_url=s.provider_url
                ),
                credential=f"sk-first-{tag}",
            ),
            metadata=admin,
        )
    ).deployment.deployment_id
    await idn.UpdateModelDeployment(
        ipb.UpdateModelDeploymentRequest(
            deployment=ipb.ModelDeployment(tenant_id=tenant, deployment_id=deployment),
            credential=f"sk-second-{tag}",
            update_mask=mask("credential"),
        ),
        metadata=admin,
    )
    await idn.DeleteModelDeployment(
        ipb.DeleteModelDeploymentRequest(tenant_id=tenant, deployment_id=deployment),
        metadata=admin,
    )
    await idn.DeleteModelConfig(
        ipb.DeleteModelConfigRequest(tenant_id=tenant, config_id=config), metadata=admin
    )
    await idn.DeleteModel(ipb.DeleteModelRequest(model_id=model), metadata=admin)
    plan_a = (
        await quo.CreatePlan(
            qpb.CreatePlanRequest(
                plan=qpb.Plan(tenant_id=tenant, name="A", monthly_request_limit=10)
            ),
            metadata=admin,
        )
    ).plan.plan_id
    await quo.UpdatePlan(
        qpb.UpdatePlanRequest(
            plan=qpb.Plan(plan_id=plan_a, monthly_request_limit=20),
            update_mask=mask("monthly_request_limit"),
        ),
        metadata=admin,
    )
    plan_b = (
        await quo.CreatePlan(
            qpb.CreatePlanRequest(
                plan=qpb.Plan(tenant_id=tenant, name="B", monthly_request_limit=50)
            ),
            metadata=admin,
        )
    ).plan.plan_id
    sub = (
        await quo.CreateSubscription(
            qpb.CreateSubscriptionRequest(tenant_id=tenant, user_id=user, plan_id=plan_a),
            metadata=admin,
        )
    ).subscription.subscription_id
    await quo.ChangeSubscriptionPlan(
        qpb.ChangeSubscriptionPlanRequest(
            tenant_id=tenant, subscription_id=sub, plan_id=plan_b, request_id=f"c-{tag}"
        ),
        metadata=admin,
    )
    await quo.EndSubscription(
        qpb.EndSubscriptionRequest(tenant_id=tenant, subscription_id=sub), metadata=admin
    )
    plan_c = (
        await quo.CreatePlan(
            qpb.CreatePlanRequest(
                plan=qpb.Plan(tenant_id=tenant, name="C", monthly_request_limit=1)
            ),
            metadata=admin,
        )
    ).plan.plan_id
    await quo.DeletePlan(qpb.DeletePlanRequest(plan_id=plan_c), metadata=admin)
    erase = history_pb2.DeleteUserInteractionsRequest(
        tenant_id=tenant, user_id=user, request_id=f"e-{tag}"
    )
    await hist.DeleteUserInteractions(erase, metadata=admin)
    await hist.DeleteUserInteractions(erase, metadata=admin)  # a replay: no second event
    await idn.DeleteUser(ipb.DeleteUserRequest(tenant_id=tenant, user_id=user), metadata=admin)
    await idn.DeleteTenant(ipb.DeleteTenantRequest(tenant_id=tenant, cascade=True), metadata=admin)

    expected = Counter(
        {
            ("tenant", "created"): 1, ("tenant", "updated"): 1, ("tenant", "deleted"): 1,
            ("user", "created"): 1, ("user", "updated"): 1, ("user", "deleted"): 1,
            ("api_key", "created"): 1, ("api_key", "revoked"): 1,
            ("model", "created"): 1, ("model", "updated"): 1, ("model", "deleted"): 1,
            ("model_config", "created"): 1, ("model_config", "updated"): 1,
            ("model_config", "deleted"): 1,
            ("model_deployment", "created"): 1, ("model_deployment", "credential_replaced"): 1,
            ("model_deployment", "deleted"): 1,
            ("plan", "created"): 3, ("plan", "updated"): 1, ("plan", "deleted"): 1,
            ("subscription", "created"): 1, ("subscription", "plan_changed"): 1,
            ("subscription", "ended"): 1, ("interactions", "erased"): 1,
        }
    )  # fmt: skip
    events = await settled(s, sum(expected.values()), tenant_id=tenant)
    assert Counter((e.resource, e.action) for e in events) == expected
    assert len({e.adjustment_id for e in events}) == len(events)
    by = {(e.resource, e.action, e.resource_id): e for e in events}
    assert changes_of(by["tenant", "updated", tenant]) == {"contact": ("", "ops@x")}
    # The user's name and email were personal: the erasure cleared them, the events stay.
    assert changes_of(by["user", "updated", user]) == {"email": (None, None)}
    assert all(c.personal for c in by["user", "updated", user].changes)
    assert changes_of(by["user", "deleted", user]) == {"name": (None, None), "email": (None, None)}
    revoked = changes_of(by["api_key", "revoked", key.api_key.key_id])
    assert list(revoked) == ["revoke_time"] and revoked["revoke_time"][0] is None
    assert changes_of(by["model", "updated", model]) == {"description": ("", "d")}
    assert changes_of(by["model_config", "updated", config]) == {"token_limit": (None, 64)}
    made = changes_of(by["model_deployment", "created", deployment])
    assert made["credential"] == (None, "set") and made["config_id"] == (None, config)
    assert changes_of(by["model_deployment", "credential_replaced", deployment]) == {
        "credential": ("set", "replaced")
    }
    assert changes_of(by["model_deployment", "deleted", deployment])["credential"] == ("set", None)
    assert changes_of(by["plan", "updated", plan_a]) == {"monthly_request_limit": (10, 20)}
    change = by["subscription", "plan_changed", sub]
    assert change.user_id == user and change.request_id == f"c-{tag}"
    before, after = changes_of(change)["plan"]
    assert (before["name"], before["monthly_request_limit"]) == ("A", 20)
    assert (after["name"], after["monthly_request_limit"]) == ("B", 50)
    ended = changes_of(by["subscription", "ended", sub])
    assert ended["end_time"][0] is None and ended["end_time"][1]
    erased = by["interactions", "erased", user]
    assert erased.service == "history" and erased.request_id == f"e-{tag}"
    for e in events:  # who: the platform admin's key
        assert e.actor.role == "platform_admin" and e.actor.key_id and e.time.seconds > 0
    assert {e.service for e in events} == {"identity", "quota", "history"}


async def test_a_tenant_admin_reads_only_its_own_tenant(world: Suite) -> None:
    one, other = await make_tenant(world), await make_tenant(world)
    key, key_id = await tenant_admin_key(world, one.tenant_id)
    idn, _, _ = _stubs(world)
    await idn.UpdateUser(
        ipb.UpdateUserRequest(
            user=ipb.User(tenant_id=one.tenant_id, user_id=one.user_id, name="n2"),
            update_mask=mask("name"),
        ),
        metadata=bearer(key),
    )
    mine = await settled(world, 1, tenant_id=one.tenant_id, resource="user", action="updated")
    assert [(e.actor.key_id, e.actor.role, e.actor.tenant_id) for e in mine] == [
        (key_id, "tenant_admin", one.tenant_id)
    ]
    own = await adjustments(world, key)  # empty tenant_id: the caller's own
    assert own and {e.tenant_id for e in own} == {one.tenant_id}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await adjustments(world, key, tenant_id=other.tenant_id)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await adjustments(world, one.user_key)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    everyone = {e.tenant_id for e in await adjustments(world)}  # a platform admin: all
    assert {one.tenant_id, other.tenant_id} <= everyone


async def test_plan_changes_read_back_in_order_with_both_limits(world: Suite) -> None:
    t = await make_tenant(world)
    _, quo, _ = _stubs(world)
    admin = bearer(world.admin_key)
    plans = {}
    for name, limit in (("Basic", 100), ("Pro", 1000)):
        plan = qpb.Plan(tenant_id=t.tenant_id, name=name, monthly_request_limit=limit)
        plans[name] = (await quo.CreatePlan(qpb.CreatePlanRequest(plan=plan), metadata=admin)).plan
    subs = await quo.ListSubscriptions(
        qpb.ListSubscriptionsRequest(tenant_id=t.tenant_id, user_id=t.user_id), metadata=admin
    )
    sub = subs.subscriptions[0]
    for name in ("Basic", "Pro"):
        await quo.ChangeSubscriptionPlan(
            qpb.ChangeSubscriptionPlanRequest(
                tenant_id=t.tenant_id,
                subscription_id=sub.subscription_id,
                plan_id=plans[name].plan_id,
            ),
            metadata=admin,
        )
    got = await settled(world, 2, tenant_id=t.tenant_id, user_id=t.user_id, action="plan_changed")
    steps = [changes_of(e)["plan"] for e in got]
    names = [(b["name"], a["name"]) for b, a in steps]
    limits = [(b["monthly_request_limit"], a["monthly_request_limit"]) for b, a in steps]
    assert names[1] == ("Basic", "Pro") and names[0][1] == "Basic"
    assert limits == [(100, 100), (100, 1000)]  # make_tenant's plan has limit 100 too
    assert got[0].time.ToDatetime() <= got[1].time.ToDatetime()


async def test_an_outage_of_history_blocks_no_admin_call_and_loses_nothing(world: Suite) -> None:
    t = await make_tenant(world)
    idn, _, _ = _stubs(world)
    admin = bearer(world.admin_key)
    before = await settled(world, MADE, tenant_id=t.tenant_id)
    world.kill("history")
    try:
        for n in range(50):
            request = ipb.UpdateTenantRequest(
                tenant=ipb.Tenant(tenant_id=t.tenant_id, contact=f"c{n}"),
                update_mask=mask("contact"),
            )
            await idn.UpdateTenant(request, metadata=admin, timeout=5)
    finally:
        await world.restart("history")
    after = await settled(world, len(before) + 50, timeout=60, tenant_id=t.tenant_id)
    updates = [e for e in after if e.resource == "tenant" and e.action == "updated"]
    assert len(updates) == 50
    assert len({e.adjustment_id for e in after}) == len(after) == len(before) + 50
    assert [changes_of(e)["contact"][1] for e in updates] == [f"c{n}" for n in range(50)]


async def test_no_secret_or_interaction_text_in_any_event(world: Suite) -> None:
    t = await make_tenant(world)
    question = f"private question {uuid.uuid4().hex}"
    await t.chat(question)
    await t.interactions(want=1)
    events = await settled(world, MADE, tenant_id=t.tenant_id)
    dump = json.dumps([json_format.MessageToDict(e) for e in await adjustments(world)])
    assert t.credential not in dump and t.user_key not in dump
    assert question not in dump and "sk-" not in dump
    assert len(events) >= MADE


async def test_system_events_and_the_cli(world: Suite, tmp_path: Path) -> None:
    from tests.e2e.test_llm_e2e import gatewayctl

    hist = history_pb2_grpc.HistoryServiceStub(world.channel("history"))
    deadline = asyncio.get_running_loop().time() + 30
    while True:  # identity's and quota's migrations at start, through their outboxes
        reply = await hist.ListSystemEvents(
            apb.ListSystemEventsRequest(event="migrations_applied", page_size=100),
            metadata=bearer(world.admin_key),
            timeout=10,
        )
        seen = {e.service for e in reply.events}
        if {"identity", "quota"} <= seen or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert {"identity", "quota"} <= seen
    t = await make_tenant(world)
    key, _ = await tenant_admin_key(world, t.tenant_id)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await hist.ListSystemEvents(apb.ListSystemEventsRequest(), metadata=bearer(key))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await settled(world, MADE, tenant_id=t.tenant_id)
    listed = await asyncio.to_thread(
        gatewayctl, world, "--key", key, "--json", "audit", "list", "--resource", "plan",
        local=tmp_path,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["resource"], r["action"], r["tenant_id"]) for r in rows] == [
        ("plan", "created", t.tenant_id)
    ]
    table = await asyncio.to_thread(
        gatewayctl, world, "--key", world.admin_key, "system-events", "list",
        "--event", "migrations_applied", local=tmp_path,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "migrations_applied" in table.stdout
