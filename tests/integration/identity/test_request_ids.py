"""request_id in identity through the real server (finding 3): scoped by the caller's
tenant and the method, bound to the request's content (AIP-155)."""

from __future__ import annotations

import uuid

import grpc

from llmgw.identity.v1 import identity_pb2 as pb
from tests.integration.identity.conftest import Client


async def test_same_id_replays_the_same_content_and_refuses_other_content(client: Client) -> None:
    tenant = await client.tenant()
    admin = await client.key(tenant.tenant_id, pb.ROLE_TENANT_ADMIN)
    rid = uuid.uuid4().hex
    create = pb.CreateUserRequest(
        user=pb.User(tenant_id=tenant.tenant_id, name="ana", email="ana@x.io"), request_id=rid
    )
    first = await client.call("CreateUser", create, admin)
    assert (await client.call("CreateUser", create, admin)).user == first.user
    create.user.email = "bia@x.io"
    assert await client.fails("CreateUser", create, admin) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUEST_ID_REUSED",
    )
    # The same id on another method is another request.
    key = pb.CreateApiKeyRequest(
        tenant_id=tenant.tenant_id, role=pb.ROLE_TENANT_ADMIN, request_id=rid
    )
    issued = await client.call("CreateApiKey", key, admin)
    replay = await client.call("CreateApiKey", key, admin)
    assert issued.secret and not replay.secret
    assert replay.api_key.key_id == issued.api_key.key_id
    key.display_name = "other"
    assert (await client.fails("CreateApiKey", key, admin))[1] == "REQUEST_ID_REUSED"


async def test_two_tenants_share_a_request_id_without_meeting(client: Client) -> None:
    a, b = await client.tenant(), await client.tenant()
    rid = uuid.uuid4().hex
    made = []
    for tenant in (a, b):
        admin = await client.key(tenant.tenant_id, pb.ROLE_TENANT_ADMIN)
        user = pb.User(tenant_id=tenant.tenant_id, name="same", email="same@x.io")
        made.append(
            (
                await client.call(
                    "CreateUser", pb.CreateUserRequest(user=user, request_id=rid), admin
                )
            ).user
        )
    assert made[0].tenant_id == a.tenant_id and made[1].tenant_id == b.tenant_id
    assert made[0].user_id != made[1].user_id
