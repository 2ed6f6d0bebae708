"""A tenant-A admin walks every identity RPC against tenant B's resources: all refused
with PERMISSION_DENIED, and B's data is left as it was."""

from __future__ import annotations

import grpc
from google.protobuf import field_mask_pb2

from llmgw.identity.v1 import identity_pb2 as pb

C = grpc.StatusCode


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


async def _tenant_with_everything(client, label: str) -> dict[str, str]:
    tid = (await client.tenant(f"iso {label} {id(client)}")).tenant_id
    user = await client.user(tid, f"{label}@example.com")
    model = (
        await client.call(
            "CreateModel",
            pb.CreateModelRequest(
                model=pb.Model(
                    tenant_id=tid,
                    name=f"model-{label}",
                    provider="OpenAI",
                    access_type=pb.ACCESS_TYPE_CLOUD,
                )
            ),
        )
    ).model
    config = (
        await client.call(
            "CreateModelConfig",
            pb.CreateModelConfigRequest(
                config=pb.ModelConfig(tenant_id=tid, model_id=model.model_id)
            ),
        )
    ).config
    deployment = await client.deploy(tid, config.config_id, "sk-b")
    key = await client.call(
        "CreateApiKey", pb.CreateApiKeyRequest(tenant_id=tid, role=pb.ROLE_TENANT_ADMIN)
    )
    return {
        "tenant": tid,
        "user": user.user_id,
        "model": model.model_id,
        "config": config.config_id,
        "deployment": deployment.deployment_id,
        "key": key.api_key.key_id,
        "secret": key.secret,
    }


def attacks(b: dict[str, str], a: dict[str, str]) -> list[tuple[str, object]]:
    tb, ub, mb, cb = b["tenant"], b["user"], b["model"], b["config"]
    return [
        ("CreateTenant", pb.CreateTenantRequest(tenant=pb.Tenant(name="evil"))),
        ("GetTenant", pb.GetTenantRequest(tenant_id=tb)),
        ("ListTenants", pb.ListTenantsRequest()),
        (
            "UpdateTenant",
            pb.UpdateTenantRequest(
                tenant=pb.Tenant(tenant_id=tb, name="x"), update_mask=mask("name")
            ),
        ),
        ("DeleteTenant", pb.DeleteTenantRequest(tenant_id=tb, cascade=True)),
        ("CreateUser", pb.CreateUserRequest(user=pb.User(tenant_id=tb, name="x"))),
        ("GetUser", pb.GetUserRequest(tenant_id=tb, user_id=ub)),
        ("ListUsers", pb.ListUsersRequest(tenant_id=tb)),
        (
            "UpdateUser",
            pb.UpdateUserRequest(
                user=pb.User(tenant_id=tb, user_id=ub, name="x"), update_mask=mask("name")
            ),
        ),
        ("DeleteUser", pb.DeleteUserRequest(tenant_id=tb, user_id=ub)),
        # Keys of either role in B.
        ("CreateApiKey", pb.CreateApiKeyRequest(tenant_id=tb, role=pb.ROLE_TENANT_ADMIN)),
        ("CreateApiKey", pb.CreateApiKeyRequest(tenant_id=tb, user_id=ub, role=pb.ROLE_USER)),
        ("ListApiKeys", pb.ListApiKeysRequest(tenant_id=tb)),
        ("RevokeApiKey", pb.RevokeApiKeyRequest(key_id=b["key"])),
        (
            "CreateModel",
            pb.CreateModelRequest(
                model=pb.Model(
                    tenant_id=tb, name="x", provider="p", access_type=pb.ACCESS_TYPE_CLOUD
                )
            ),
        ),
        ("GetModel", pb.GetModelRequest(model_id=mb)),
        ("ListModels", pb.ListModelsRequest(tenant_id=tb)),
        (
            "UpdateModel",
            pb.UpdateModelRequest(model=pb.Model(model_id=mb, name="x"), update_mask=mask("name")),
        ),
        ("DeleteModel", pb.DeleteModelRequest(model_id=mb)),
        (
            "CreateModelConfig",
            pb.CreateModelConfigRequest(config=pb.ModelConfig(tenant_id=tb, model_id=mb)),
        ),
        (
            "CreateModelConfig",
            pb.CreateModelConfigRequest(config=pb.ModelConfig(tenant_id=a["tenant"], model_id=mb)),
        ),
        ("GetModelConfig", pb.GetModelConfigRequest(tenant_id=tb, config_id=cb)),
        ("ListModelConfigs", pb.ListModelConfigsRequest(tenant_id=tb)),
        (
            "UpdateModelConfig",
            pb.UpdateModelConfigRequest(
                config=pb.ModelConfig(tenant_id=tb, config_id=cb, token_limit=1),
                update_mask=mask("token_limit"),
            ),
        ),
        ("DeleteModelConfig", pb.DeleteModelConfigRequest(tenant_id=tb, config_id=cb)),
        (
            "CreateModelDeployment",
            pb.CreateModelDeploymentRequest(
                deployment=pb.ModelDeployment(tenant_id=tb, config_id=cb), credential="x"
            ),
        ),
        (
            "ListModelDeployments",
            pb.ListModelDeploymentsRequest(tenant_id=tb, config_id=cb),
        ),
        (
            "UpdateModelDeployment",
            pb.UpdateModelDeploymentRequest(
                deployment=pb.ModelDeployment(tenant_id=tb, deployment_id=b["deployment"]),
                credential="x",
                update_mask=mask("credential"),
            ),
        ),
        (
            "DeleteModelDeployment",
            pb.DeleteModelDeploymentRequest(tenant_id=tb, deployment_id=b["deployment"]),
        ),
    ]


async def test_tenant_a_admin_is_refused_everything_of_tenant_b(client):
    a = await _tenant_with_everything(client, "a")
    b = await _tenant_with_everything(client, "b")
    walked = set()
    for method, request in attacks(b, a):
        code, reason = await client.fails(method, request, a["secret"])
        assert code == C.PERMISSION_DENIED, (method, code, reason)
        assert reason, method
        walked.add(method)
    # Authenticate takes no principal; ResolveModel refuses a tenant key outright.
    service = pb.DESCRIPTOR.services_by_name["IdentityService"]
    assert walked == {m.name for m in service.methods} - {"Authenticate"}
    try:
        await client.internal.ResolveModel(
            pb.ResolveModelRequest(tenant_id=b["tenant"], model_name="model-b"),
            metadata=(("authorization", f"Bearer {a['secret']}"),),
        )
        raise AssertionError("ResolveModel answered a tenant key")
    except grpc.aio.AioRpcError as err:
        assert err.code() == C.UNAUTHENTICATED
    # B is intact.
    got = await client.call(
        "ListModelDeployments",
        pb.ListModelDeploymentsRequest(tenant_id=b["tenant"], config_id=b["config"]),
        b["secret"],
    )
    assert [x.has_credential for x in got.deployments] == [True]
    user = await client.call(
        "GetUser", pb.GetUserRequest(tenant_id=b["tenant"], user_id=b["user"]), b["secret"]
    )
    assert user.user.name == "someone"
    resolved = await client.resolve(b["tenant"], "model-b")
    assert [x.credential for x in resolved.deployments] == ["sk-b"]


async def test_ids_of_tenant_b_under_tenant_a_are_not_found(client):
    """B's config id addressed through A's own tenant finds nothing in A's scope."""
    a = await _tenant_with_everything(client, "c")
    b = await _tenant_with_everything(client, "d")
    code, _ = await client.fails(
        "GetModelConfig",
        pb.GetModelConfigRequest(tenant_id=a["tenant"], config_id=b["config"]),
        a["secret"],
    )
    assert code == C.NOT_FOUND
    code, _ = await client.fails(
        "GetUser", pb.GetUserRequest(tenant_id=a["tenant"], user_id=b["user"]), a["secret"]
    )
    assert code == C.NOT_FOUND
