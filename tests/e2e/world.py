"""Builds tenants, users, plans, models and keys through the public APIs (admin key)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2

from llmgw.history.v1 import history_pb2, history_pb2_grpc
from llmgw.identity.v1 import identity_pb2 as ipb
from llmgw.identity.v1 import identity_pb2_grpc as irpc
from llmgw.llm.v1 import llm_pb2, llm_pb2_grpc
from llmgw.quota.v1 import quota_pb2, quota_pb2_grpc
from tests.e2e.conftest import Suite


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


@dataclass
class Tenant:
    suite: Suite
    tenant_id: str
    user_id: str
    user_key: str
    model: str
    credential: str

    @property
    def llm(self) -> llm_pb2_grpc.LlmServiceStub:
        return llm_pb2_grpc.LlmServiceStub(self.suite.channel("llm"))

    async def chat(self, text: str, *, key: str = "", **kw: Any) -> llm_pb2.ChatResponse:
        req = llm_pb2.ChatRequest(
            model=kw.pop("model", self.model),
            messages=[llm_pb2.Message(role=llm_pb2.MESSAGE_ROLE_USER, content=text)],
            **kw,
        )
        return await self.llm.Chat(req, metadata=bearer(key or self.user_key), timeout=10)

    async def used(self) -> int:
        stub = quota_pb2_grpc.QuotaServiceStub(self.suite.channel("quota"))
        reply = await stub.GetUsage(
            quota_pb2.GetUsageRequest(tenant_id=self.tenant_id, user_id=self.user_id),
            metadata=bearer(self.suite.admin_key),
            timeout=10,
        )
        return int(reply.used)

    async def interactions(
        self, want: int = 0, timeout: float = 15.0
    ) -> list[history_pb2.Interaction]:
        """The user's interactions in history; with ``want``, waits (up to ``timeout``) for
        that many: records reach history through quota's outbox, a moment after the answer."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = await self._interactions()
            if len(found) >= want or asyncio.get_running_loop().time() > deadline:
                return found
            await asyncio.sleep(0.05)

    async def _interactions(self) -> list[history_pb2.Interaction]:
        stub = history_pb2_grpc.HistoryServiceStub(self.suite.channel("history"))
        out: list[history_pb2.Interaction] = []
        token = ""
        while True:
            reply = await stub.ListInteractions(
                history_pb2.ListInteractionsRequest(
                    tenant_id=self.tenant_id,
                    user_id=self.user_id,
                    page_size=200,
                    page_token=token,
                ),
                metadata=bearer(self.suite.admin_key),
                timeout=10,
            )
            out += reply.interactions
            token = reply.next_page_token
            if not token:
                return out


async def make_tenant(
    suite: Suite,
    *,
    limit: int = 100,
    token_limit: int = 64,
    base_url: str = "",
    allowed_extras: tuple[str, ...] = (),
) -> Tenant:
    admin = bearer(suite.admin_key)
    idn = irpc.IdentityServiceStub(suite.channel("identity"))
    quo = quota_pb2_grpc.QuotaServiceStub(suite.channel("quota"))
    tag = uuid.uuid4().hex[:8]
    tenant = (
        await idn.CreateTenant(
            ipb.CreateTenantRequest(tenant=ipb.Tenant(name=f"tenant {tag}")), metadata=admin
        )
    ).tenant.tenant_id
    user = (
        await idn.CreateUser(
            ipb.CreateUserRequest(user=ipb.User(tenant_id=tenant, name=f"user {tag}")),
            metadata=admin,
        )
    ).user.user_id
    plan = (
        await quo.CreatePlan(
            quota_pb2.CreatePlanRequest(
                plan=quota_pb2.Plan(
                    tenant_id=tenant, name=f"plan {tag}", monthly_request_limit=limit
                )
            ),
            metadata=admin,
        )
    ).plan.plan_id
    await quo.CreateSubscription(
        quota_pb2.CreateSubscriptionRequest(tenant_id=tenant, user_id=user, plan_id=plan),
        metadata=admin,
    )
    model_name = f"model-{tag}"
    model = (
        await idn.CreateModel(
            ipb.CreateModelRequest(
                model=ipb.Model(
                    tenant_id=tenant,
                    name=model_name,
                    provider="fake",
                    access_type=ipb.ACCESS_TYPE_CLOUD,
                )
            ),
            metadata=admin,
        )
    ).model.model_id
    extra = struct_pb2.Struct()
    extra.update({"temperature": 0.4})
    credential = f"sk-{tag}"
    config = await idn.CreateModelConfig(
        ipb.CreateModelConfigRequest(
            config=ipb.ModelConfig(
                tenant_id=tenant,
                model_id=model,
                token_limit=token_limit,
                extra_parameters=extra,
                allowed_extra_parameters=allowed_extras,
            ),
        ),
        metadata=admin,
    )
    row = ipb.ModelDeployment(
        tenant_id=tenant, config_id=config.config.config_id, base_url=base_url or suite.provider_url
    )
    await idn.CreateModelDeployment(
        ipb.CreateModelDeploymentRequest(deployment=row, credential=credential), metadata=admin
    )
    key = await user_key(suite, tenant, user)
    return Tenant(suite, tenant, user, key, model_name, credential)


async def user_key(suite: Suite, tenant: str, user: str) -> str:
    idn = irpc.IdentityServiceStub(suite.channel("identity"))
    reply = await idn.CreateApiKey(
        ipb.CreateApiKeyRequest(
            tenant_id=tenant, user_id=user, role=ipb.ROLE_USER, display_name="e2e"
        ),
        metadata=bearer(suite.admin_key),
    )
    return str(reply.secret)


async def revoke(suite: Suite, key_id: str) -> None:
    idn = irpc.IdentityServiceStub(suite.channel("identity"))
    await idn.RevokeApiKey(ipb.RevokeApiKeyRequest(key_id=key_id), metadata=bearer(suite.admin_key))


async def key_id_of(suite: Suite, key: str) -> str:
    idn = irpc.IdentityServiceStub(suite.channel("identity"))
    reply = await idn.Authenticate(ipb.AuthenticateRequest(api_key=key), timeout=5)
    return str(reply.principal.key_id)
