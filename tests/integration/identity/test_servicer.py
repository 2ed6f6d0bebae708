"""The public API through a real gRPC server: codes and ErrorInfo reasons."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llmgw.identity.v1 import identity_pb2 as pb
from tests.integration.identity.conftest import AUTH_TTL

C = grpc.StatusCode


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


async def test_tenant_lifecycle_and_idempotent_create(client):
    request = pb.CreateTenantRequest(
        tenant=pb.Tenant(name="Acme", contact="ops@acme.test", time_zone="America/Sao_Paulo"),
        request_id="req-acme-1",
    )
    first = (await client.call("CreateTenant", request)).tenant
    again = (await client.call("CreateTenant", request)).tenant
    assert again.tenant_id == first.tenant_id and first.time_zone == "America/Sao_Paulo"
    assert first.create_time.seconds > 0
    got = (await client.call("GetTenant", pb.GetTenantRequest(tenant_id=first.tenant_id))).tenant
    assert got == first
    dup = pb.CreateTenantRequest(tenant=pb.Tenant(name="ACME"))
    assert await client.fails("CreateTenant", dup) == (C.ALREADY_EXISTS, "TENANT_EXISTS")
    await asyncio.sleep(0.01)
    updated = await client.call(
        "UpdateTenant",
        pb.UpdateTenantRequest(
            tenant=pb.Tenant(tenant_id=first.tenant_id, name="Acme 2"), update_mask=mask("name")
        ),
    )
    assert updated.tenant.name == "Acme 2" and updated.tenant.contact == "ops@acme.test"
    assert updated.tenant.update_time.ToDatetime() > first.update_time.ToDatetime()


async def test_validation_errors_carry_bad_request(client):
    cases = [
        ("CreateTenant", pb.CreateTenantRequest(tenant=pb.Tenant(name="  ")), "tenant.name"),
        ("CreateTenant", pb.CreateTenantRequest(tenant=pb.Tenant(name="x" * 201)), "tenant.name"),
        (
            "CreateTenant",
            pb.CreateTenantRequest(tenant=pb.Tenant(name="a", time_zone="Mars/X")),
            "tenant.time_zone",
        ),
        ("GetTenant", pb.GetTenantRequest(tenant_id="not-a-uuid"), "tenant_id"),
        (
            "UpdateTenant",
            pb.UpdateTenantRequest(
                tenant=pb.Tenant(tenant_id=str(uuid.uuid4())), update_mask=mask("name", "colour")
            ),
            "update_mask",
        ),
        ("CreateApiKey", pb.CreateApiKeyRequest(tenant_id=str(uuid.uuid4()), role=9), "role"),
        (
            "CreateModel",
            pb.CreateModelRequest(model=pb.Model(name="m", provider="p", access_type=7)),
            "model.access_type",
        ),
    ]
    tenant = await client.tenant()
    cases.append(
        (
            "CreateUser",
            pb.CreateUserRequest(
                user=pb.User(tenant_id=tenant.tenant_id, name="u", email="not-an-email")
            ),
            "user.email",
        )
    )
    for method, request, field in cases:
        try:
            await client.call(method, request)
        except grpc.aio.AioRpcError as err:
            assert err.code() == C.INVALID_ARGUMENT, (method, err)
            status = rpc_status.from_call(err)
            bad = error_details_pb2.BadRequest()
            assert any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR))
            assert bad.field_violations[0].field == field, method
        else:
            raise AssertionError(f"{method} accepted an invalid request")


async def test_users_emails_and_delete_tenant_rules(client):
    tenant = await client.tenant()
    tid = tenant.tenant_id
    user = await client.user(tid, "Ana@Example.com")
    assert (
        await client.fails(
            "CreateUser",
            pb.CreateUserRequest(user=pb.User(tenant_id=tid, name="b", email="ana@example.COM")),
        )
    ) == (C.ALREADY_EXISTS, "EMAIL_EXISTS")
    other = await client.tenant()
    await client.user(other.tenant_id, "ana@example.com")  # another tenant: fine
    missing = pb.GetUserRequest(tenant_id=tid, user_id=str(uuid.uuid4()))
    assert await client.fails("GetUser", missing) == (C.NOT_FOUND, "USER_NOT_FOUND")
    assert await client.fails("DeleteTenant", pb.DeleteTenantRequest(tenant_id=tid)) == (
        C.FAILED_PRECONDITION,
        "TENANT_HAS_USERS",
    )
    user_key = await client.key(tid, pb.ROLE_USER, user.user_id)
    me = await client.call(
        "GetUser", pb.GetUserRequest(tenant_id=tid, user_id=user.user_id), user_key
    )
    assert me.user.email == "Ana@Example.com"
    await client.call("DeleteTenant", pb.DeleteTenantRequest(tenant_id=tid, cascade=True))
    assert await client.fails("GetTenant", pb.GetTenantRequest(tenant_id=tid)) == (
        C.NOT_FOUND,
        "TENANT_NOT_FOUND",
    )
    await asyncio.sleep(AUTH_TTL + 0.1)
    code, _ = await client.fails("GetTenant", pb.GetTenantRequest(tenant_id=tid), user_key)
    assert code == C.UNAUTHENTICATED


async def test_pagination_of_users(client):
    tid = (await client.tenant()).tenant_id
    created = [(await client.user(tid)).user_id for _ in range(5)]
    seen, token = [], ""
    while True:
        reply = await client.call(
            "ListUsers", pb.ListUsersRequest(tenant_id=tid, page_size=2, page_token=token)
        )
        seen += [u.user_id for u in reply.users]
        token = reply.next_page_token
        if not token:
            break
    assert seen == created
    bad = pb.ListUsersRequest(tenant_id=str(uuid.uuid4()), page_token=token or "bogus")
    assert (await client.fails("ListUsers", bad))[0] == C.INVALID_ARGUMENT


async def test_roles_and_credentials(client):
    tid = (await client.tenant()).tenant_id
    user = await client.user(tid)
    user_key = await client.key(tid, pb.ROLE_USER, user.user_id)
    tadmin = await client.key(tid, pb.ROLE_TENANT_ADMIN)
    try:
        await client.stub.ListTenants(pb.ListTenantsRequest(), timeout=5)
        raise AssertionError("no credential accepted")
    except grpc.aio.AioRpcError as err:
        assert err.code() == C.UNAUTHENTICATED
    code, reason = await client.fails("ListTenants", pb.ListTenantsRequest(), "llmgw_bogus")
    assert (code, reason) == (C.UNAUTHENTICATED, "INVALID_API_KEY")
    assert await client.fails("ListTenants", pb.ListTenantsRequest(), tadmin) == (
        C.PERMISSION_DENIED,
        "PLATFORM_ADMIN_REQUIRED",
    )
    other_user = pb.GetUserRequest(tenant_id=tid, user_id=(await client.user(tid)).user_id)
    assert await client.fails("GetUser", other_user, user_key) == (
        C.PERMISSION_DENIED,
        "USER_ACCESS_DENIED",
    )
    assert await client.fails("ListUsers", pb.ListUsersRequest(tenant_id=tid), user_key) == (
        C.PERMISSION_DENIED,
        "TENANT_ACCESS_DENIED",
    )
    platform = pb.CreateApiKeyRequest(role=pb.ROLE_PLATFORM_ADMIN)
    assert (await client.fails("CreateApiKey", platform, tadmin))[0] == C.PERMISSION_DENIED
    # A tenant admin issues keys of its own tenant; the replay has no secret.
    request = pb.CreateApiKeyRequest(
        tenant_id=tid,
        user_id=user.user_id,
        role=pb.ROLE_USER,
        request_id="k-1",
        display_name="phone",
    )
    first = await client.call("CreateApiKey", request, tadmin)
    replay = await client.call("CreateApiKey", request, tadmin)
    assert first.secret.startswith("llmgw_" + first.api_key.prefix + "_")
    assert replay.secret == "" and replay.api_key.key_id == first.api_key.key_id
    listed = await client.call("ListApiKeys", pb.ListApiKeysRequest(tenant_id=tid), tadmin)
    assert first.api_key.key_id in [k.key_id for k in listed.api_keys]
    assert all(first.secret not in str(k) for k in listed.api_keys)


async def test_revoked_key_refused_within_bound(client):
    tid = (await client.tenant()).tenant_id
    key = await client.key(tid, pb.ROLE_TENANT_ADMIN)
    principal = (await client.stub.Authenticate(pb.AuthenticateRequest(api_key=key))).principal
    await client.stub.Authenticate(pb.AuthenticateRequest(api_key=key))  # cached now
    revoked = await client.call("RevokeApiKey", pb.RevokeApiKeyRequest(key_id=principal.key_id))
    assert revoked.api_key.revoke_time.seconds > 0
    await client.call("RevokeApiKey", pb.RevokeApiKeyRequest(key_id=principal.key_id))  # twice ok
    await asyncio.sleep(AUTH_TTL + 0.05)
    try:
        await client.stub.Authenticate(pb.AuthenticateRequest(api_key=key))
        raise AssertionError("revoked key accepted")
    except grpc.aio.AioRpcError as err:
        assert err.code() == C.UNAUTHENTICATED


async def test_expired_key_refused(client):
    tid = (await client.tenant()).tenant_id
    soon = timestamp_pb2.Timestamp()
    soon.FromDatetime(datetime.now(UTC) + timedelta(seconds=0.5))
    key = await client.key(tid, pb.ROLE_TENANT_ADMIN, expire_time=soon)
    await client.stub.Authenticate(pb.AuthenticateRequest(api_key=key))
    await asyncio.sleep(0.7)
    try:
        await client.stub.Authenticate(pb.AuthenticateRequest(api_key=key))
        raise AssertionError("expired key accepted")
    except grpc.aio.AioRpcError as err:
        assert err.code() == C.UNAUTHENTICATED


async def test_models_scopes_listing_and_resolve(client):
    tid = (await client.tenant()).tenant_id
    name = f"gpt-{uuid.uuid4().hex[:6]}"

    async def model(tenant_id: str, model_name: str, request_id: str = "") -> pb.Model:
        m = pb.Model(
            tenant_id=tenant_id,
            name=model_name,
            provider="OpenAI",
            access_type=pb.ACCESS_TYPE_CLOUD,
        )
        req = pb.CreateModelRequest(model=m, request_id=request_id)
        return (await client.call("CreateModel", req)).model

    glob = await model("", name, "m-1")
    assert (await model("", name, "m-1")).model_id == glob.model_id
    dup = pb.CreateModelRequest(
        model=pb.Model(name=name, provider="x", access_type=pb.ACCESS_TYPE_CLOUD)
    )
    assert await client.fails("CreateModel", dup) == (C.ALREADY_EXISTS, "MODEL_EXISTS")
    other_global = await model("", name + "-b")
    assert await client.fails("GetModel", pb.GetModelRequest(model_id=str(uuid.uuid4()))) == (
        C.NOT_FOUND,
        "MODEL_NOT_FOUND",
    )
    # Not configured for the tenant yet.
    err = await _resolve_error(client, tid, name)
    assert err == (C.PERMISSION_DENIED, "MODEL_NOT_ENABLED")
    assert await _resolve_error(client, tid, "nope") == (C.NOT_FOUND, "MODEL_NOT_FOUND")
    config = pb.ModelConfig(tenant_id=tid, model_id=glob.model_id, token_limit=100)
    config.extra_parameters.update({"temperature": 0.2})
    created = await client.call("CreateModelConfig", pb.CreateModelConfigRequest(config=config))
    assert created.config.token_limit == 100
    row = await client.deploy(
        tid, created.config.config_id, "sk-global", base_url="http://p.test/v1"
    )
    assert row.has_credential and row.weight == 1 and not row.HasField("attempt_timeout_ms")
    resolved = await client.resolve(tid, name)
    assert resolved.model.model_id == glob.model_id
    (dep,) = resolved.deployments
    assert (dep.credential, dep.base_url, dep.upstream_model) == (
        "sk-global",
        "http://p.test/v1",
        name,
    )
    assert resolved.extra_parameters["temperature"] == 0.2 and resolved.token_limit == 100
    assert await _resolve_error(client, tid, name, "wrong") == (C.UNAUTHENTICATED, "INTERNAL_ONLY")
    # The tenant's own model of the same name wins.
    own = await model(tid, name)
    mine = await client.call(
        "CreateModelConfig",
        pb.CreateModelConfigRequest(config=pb.ModelConfig(tenant_id=tid, model_id=own.model_id)),
    )
    await client.deploy(tid, mine.config.config_id, "sk-own", upstream_model="their-name")
    await asyncio.sleep(AUTH_TTL + 0.05)
    resolved = await client.resolve(tid, name)
    assert resolved.model.model_id == own.model_id
    assert [(x.credential, x.upstream_model) for x in resolved.deployments] == [
        ("sk-own", "their-name")
    ]
    # A user sees the enabled models only; a tenant admin all global ones too.
    user = await client.user(tid)
    user_key = await client.key(tid, pb.ROLE_USER, user.user_id)
    listed = await client.call("ListModels", pb.ListModelsRequest(tenant_id=tid), user_key)
    ids = {m.model_id for m in listed.models}
    assert {glob.model_id, own.model_id} <= ids and other_global.model_id not in ids
    admin_list = await client.call("ListModels", pb.ListModelsRequest(tenant_id=tid))
    assert other_global.model_id in {m.model_id for m in admin_list.models}
    names = [m.name for m in admin_list.models]
    assert names == sorted(names)


async def _resolve_error(client, tid, name, token=None):
    try:
        await (client.resolve(tid, name) if token is None else client.resolve(tid, name, token))
    except grpc.aio.AioRpcError as err:
        from gateway_common.status import error_info

        info = error_info(err)
        return err.code(), info.reason if info else ""
    raise AssertionError("resolve succeeded")


async def test_allowed_extra_parameters_stored_updated_and_resolved(client):
    tid = (await client.tenant()).tenant_id
    name = f"extras-{uuid.uuid4().hex[:6]}"
    m = pb.Model(tenant_id=tid, name=name, provider="OpenAI", access_type=pb.ACCESS_TYPE_CLOUD)
    model = (await client.call("CreateModel", pb.CreateModelRequest(model=m))).model
    config = pb.ModelConfig(
        tenant_id=tid, model_id=model.model_id, allowed_extra_parameters=["top_k", "top_k", "a_b"]
    )
    created = await client.call("CreateModelConfig", pb.CreateModelConfigRequest(config=config))
    assert list(created.config.allowed_extra_parameters) == ["a_b", "top_k"]  # sorted, unique
    resolved = await client.resolve(tid, name)
    assert list(resolved.allowed_extra_parameters) == ["a_b", "top_k"]
    change = pb.ModelConfig(
        tenant_id=tid, config_id=created.config.config_id, allowed_extra_parameters=["min_p"]
    )
    req = pb.UpdateModelConfigRequest(config=change, update_mask=mask("allowed_extra_parameters"))
    updated = await client.call("UpdateModelConfig", req)
    assert list(updated.config.allowed_extra_parameters) == ["min_p"]
    got = await client.call(
        "GetModelConfig",
        pb.GetModelConfigRequest(tenant_id=tid, config_id=created.config.config_id),
    )
    assert list(got.config.allowed_extra_parameters) == ["min_p"]
    bad = pb.ModelConfig(tenant_id=tid, config_id=created.config.config_id)
    bad.allowed_extra_parameters.append("$where")
    req = pb.UpdateModelConfigRequest(config=bad, update_mask=mask("allowed_extra_parameters"))
    assert (await client.fails("UpdateModelConfig", req))[0] == C.INVALID_ARGUMENT


async def test_configuration_urls_and_credentials_moved_to_deployments(client):
    """The deprecated fields are refused with where they went; a deployment takes them."""
    tid = (await client.tenant()).tenant_id
    name = f"moved-{uuid.uuid4().hex[:6]}"
    m = pb.Model(tenant_id=tid, name=name, provider="OpenAI", access_type=pb.ACCESS_TYPE_CLOUD)
    model = (await client.call("CreateModel", pb.CreateModelRequest(model=m))).model
    config = pb.ModelConfig(tenant_id=tid, model_id=model.model_id)
    old = pb.CreateModelConfigRequest(config=config, credential="sk")
    assert await client.fails("CreateModelConfig", old) == (
        C.INVALID_ARGUMENT,
        "MOVED_TO_DEPLOYMENTS",
    )
    created = await client.call("CreateModelConfig", pb.CreateModelConfigRequest(config=config))
    cid = created.config.config_id
    for priority in (1, 0):
        await client.deploy(tid, cid, f"sk-{priority}", priority=priority, attempt_timeout_ms=500)
    resolved = await client.resolve(tid, name)
    assert [(x.credential, x.attempt_timeout_ms) for x in resolved.deployments] == [
        ("sk-0", 500),
        ("sk-1", 500),
    ]
    listed = await client.call(
        "ListModelDeployments", pb.ListModelDeploymentsRequest(tenant_id=tid, config_id=cid)
    )
    first = listed.deployments[0]
    change = pb.ModelDeployment(tenant_id=tid, deployment_id=first.deployment_id, weight=0)
    req = pb.UpdateModelDeploymentRequest(deployment=change, update_mask=mask("weight"))
    assert (await client.fails("UpdateModelDeployment", req))[0] == C.INVALID_ARGUMENT
    fallbacks = pb.ModelConfig(tenant_id=tid, config_id=cid, fallback_models=["other", "x"])
    req = pb.UpdateModelConfigRequest(config=fallbacks, update_mask=mask("fallback_models"))
    assert list((await client.call("UpdateModelConfig", req)).config.fallback_models) == [
        "other",
        "x",
    ]
    await asyncio.sleep(AUTH_TTL + 0.05)
    assert list((await client.resolve(tid, name)).fallback_models) == ["other", "x"]
    gone = pb.DeleteModelConfigRequest(tenant_id=tid, config_id=cid)
    await client.call("DeleteModelConfig", gone)
    assert await client.fails(
        "ListModelDeployments", pb.ListModelDeploymentsRequest(tenant_id=tid, config_id=cid)
    ) == (C.NOT_FOUND, "MODEL_CONFIG_NOT_FOUND")
