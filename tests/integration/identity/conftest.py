"""identity on the real PostgreSQL: one migrated database and one in-process server
for the module's tests, plus helpers to call it as a given key."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway_common import db
from gateway_common.service_auth import SERVICE_TOKEN
from gateway_common.status import error_info
from identity_svc import migrate
from identity_svc.bootstrap import build
from identity_svc.config import IdentitySettings
from identity_svc.service_api_keys import ApiKeyUseCases
from identity_svc.unit_of_work import sql_uow_factory
from llmgw.identity.v1 import identity_pb2 as pb
from llmgw.identity.v1 import identity_pb2_grpc
from tests.support import (
    SERVICE_TOKENS,
    fresh_pg_database,
    running_server,
    service_fields,
    sqlalchemy_url,
)

AUTH_TTL = 0.3  # tiny, so the revocation bound is testable quickly


def random_key_spec() -> str:
    return "k2:" + base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with fresh_pg_database("identity") as dsn:
        url = sqlalchemy_url(dsn)
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="module")
def settings(database_url: str) -> IdentitySettings:
    base = IdentitySettings(
        database_url=database_url,
        encryption_keys=SecretStr(random_key_spec()),
        auth_cache_ttl_seconds=AUTH_TTL,
        resolve_cache_ttl_seconds=AUTH_TTL,
    )
    return base.model_copy(update=service_fields("identity"))


@pytest.fixture(scope="module")
async def engine(database_url: str, settings: IdentitySettings) -> AsyncIterator[AsyncEngine]:
    eng = db.make_engine(database_url, pool_size=4, prepare=settings.db_prepared_statements)
    yield eng
    await eng.dispose()


@dataclass
class Client:
    stub: identity_pb2_grpc.IdentityServiceAsyncStub
    internal: identity_pb2_grpc.IdentityInternalServiceAsyncStub
    channel: grpc.aio.Channel
    admin_key: str

    async def call(self, method: str, request: Any, key: str | None = None) -> Any:
        """Call ``method`` as ``key`` (the platform admin by default)."""
        metadata = (("authorization", f"Bearer {key or self.admin_key}"),)
        return await getattr(self.stub, method)(request, metadata=metadata, timeout=10)

    async def fails(self, method: str, request: Any, key: str | None = None) -> tuple[Any, str]:
        """(status code, ErrorInfo reason) of a call expected to fail."""
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await self.call(method, request, key)
        info = error_info(caught.value)
        return caught.value.code(), info.reason if info else ""

    async def resolve(self, tenant_id: str, name: str, token: str = SERVICE_TOKENS["llm"]) -> Any:
        return await self.internal.ResolveModel(
            pb.ResolveModelRequest(tenant_id=tenant_id, model_name=name),
            metadata=((SERVICE_TOKEN, token),),
            timeout=10,
        )

    async def deploy(
        self, tenant_id: str, config_id: str, credential: str = "", **fields: Any
    ) -> pb.ModelDeployment:
        """Add a deployment to a configuration (as the platform admin)."""
        row = pb.ModelDeployment(tenant_id=tenant_id, config_id=config_id, **fields)
        request = pb.CreateModelDeploymentRequest(deployment=row, credential=credential)
        return (await self.call("CreateModelDeployment", request)).deployment

    async def tenant(self, name: str = "") -> pb.Tenant:
        name = name or f"tenant {uuid.uuid4().hex[:8]}"
        reply = await self.call("CreateTenant", pb.CreateTenantRequest(tenant=pb.Tenant(name=name)))
        return reply.tenant

    async def user(self, tenant_id: str, email: str = "") -> pb.User:
        user = pb.User(tenant_id=tenant_id, name="someone", email=email)
        return (await self.call("CreateUser", pb.CreateUserRequest(user=user))).user

    async def key(self, tenant_id: str, role: int, user_id: str = "", **extra: Any) -> str:
        request = pb.CreateApiKeyRequest(tenant_id=tenant_id, user_id=user_id, role=role, **extra)
        return str((await self.call("CreateApiKey", request)).secret)


@pytest.fixture(scope="module")
async def client(settings: IdentitySettings, engine: AsyncEngine) -> AsyncIterator[Client]:
    _, admin_key = await ApiKeyUseCases(sql_uow_factory(engine)).issue_platform_admin_key("t")
    async with running_server(settings, build(settings, engine=engine)) as (_, channel):
        yield Client(
            identity_pb2_grpc.IdentityServiceStub(channel),  # type: ignore[arg-type]
            identity_pb2_grpc.IdentityInternalServiceStub(channel),  # type: ignore[arg-type]
            channel,
            admin_key,
        )
