"""Base URLs under the platform's egress policy, refused when set (hardening finding 10):
what is known without DNS (an IP literal, a metadata or localhost name) is INVALID_ARGUMENT
EGRESS_NOT_ALLOWED naming deployment.base_url; llm checks names again after DNS."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway_common.status import error_info
from identity_svc.bootstrap import build
from identity_svc.config import IdentitySettings
from identity_svc.service_api_keys import ApiKeyUseCases
from identity_svc.unit_of_work import sql_uow_factory
from llmgw.identity.v1 import identity_pb2 as pb
from llmgw.identity.v1 import identity_pb2_grpc
from tests.integration.identity.conftest import Client
from tests.support import running_server

ALLOW = "10.20.0.0/16, llm.corp.example"  # the platform's on-premise range and host
REFUSED = [
    "http://169.254.169.254/latest/meta-data",
    "http://[fd00:ec2::254]/v1",
    "http://metadata.google.internal/v1",
    "http://127.0.0.1:18080/v1",
    "http://localhost:8000/v1",
    "http://[::1]/v1",
    "http://10.0.0.1/v1",  # private, outside the allowed range
    "http://[::ffff:10.0.0.1]/v1",  # the same, IPv4-mapped
    "http://192.168.1.10/v1",
    "http://100.64.0.1/v1",  # carrier-grade NAT
]
ACCEPTED = [
    "http://10.20.3.4:8000/v1",  # the allowed range
    "http://llm.corp.example/v1",  # the allowed host
    "https://api.openai.com/v1",  # a name: llm checks it again after DNS
    "http://8.8.8.8/v1",  # a public address
]


@pytest.fixture(scope="module")
async def guarded(settings: IdentitySettings, engine: AsyncEngine) -> AsyncIterator[Client]:
    strict = settings.model_copy(update={"egress_allow": ALLOW})
    _, admin_key = await ApiKeyUseCases(sql_uow_factory(engine)).issue_platform_admin_key("e")
    async with running_server(strict, build(strict, engine=engine)) as (_, channel):
        yield Client(
            identity_pb2_grpc.IdentityServiceStub(channel),  # type: ignore[arg-type]
            identity_pb2_grpc.IdentityInternalServiceStub(channel),  # type: ignore[arg-type]
            channel,
            admin_key,
        )


async def model(client: Client, tenant_id: str) -> str:
    m = pb.Model(
        tenant_id=tenant_id,
        name=f"m-{uuid.uuid4().hex[:8]}",
        provider="onprem",
        access_type=pb.ACCESS_TYPE_ON_PREMISE,
    )
    return str((await client.call("CreateModel", pb.CreateModelRequest(model=m))).model.model_id)


async def config(client: Client, tenant_id: str) -> str:
    model_id = await model(client, tenant_id)
    request = pb.CreateModelConfigRequest(
        config=pb.ModelConfig(tenant_id=tenant_id, model_id=model_id)
    )
    return str((await client.call("CreateModelConfig", request)).config.config_id)


def deployment_request(tenant_id: str, config_id: str, url: str) -> pb.CreateModelDeploymentRequest:
    row = pb.ModelDeployment(tenant_id=tenant_id, config_id=config_id, base_url=url)
    return pb.CreateModelDeploymentRequest(deployment=row, credential="sk")


@pytest.mark.parametrize("url", REFUSED)
async def test_a_refused_destination_is_invalid_argument(guarded: Client, url: str):
    tenant = await guarded.tenant()
    config_id = await config(guarded, tenant.tenant_id)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await guarded.call(
            "CreateModelDeployment", deployment_request(tenant.tenant_id, config_id, url)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(err.value)
    assert info is not None and info.reason == "EGRESS_NOT_ALLOWED"
    status = rpc_status.from_call(err.value)  # type: ignore[arg-type]
    bad = error_details_pb2.BadRequest()
    assert status is not None and any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR))
    assert [v.field for v in bad.field_violations] == ["deployment.base_url"]
    assert "not allow" in (err.value.details() or "")


async def test_allowed_destinations_and_updates_are_checked_too(guarded: Client):
    tenant = await guarded.tenant()
    rows = []
    config_id = await config(guarded, tenant.tenant_id)
    for url in ACCEPTED:
        reply = await guarded.call(
            "CreateModelDeployment", deployment_request(tenant.tenant_id, config_id, url)
        )
        assert reply.deployment.base_url == url
        rows.append(reply.deployment)
    moved = pb.ModelDeployment(
        tenant_id=tenant.tenant_id,
        deployment_id=rows[0].deployment_id,
        base_url="http://169.254.169.254/",
    )
    update = pb.UpdateModelDeploymentRequest(
        deployment=moved, update_mask=field_mask_pb2.FieldMask(paths=["base_url"])
    )
    assert await guarded.fails("UpdateModelDeployment", update) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "EGRESS_NOT_ALLOWED",
    )
