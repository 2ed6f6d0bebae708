"""gRPC servicers: thin. Read the caller, call one use case, map the answer. Errors are
domain errors, turned into statuses by the shared error boundary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from gateway_common.auth import bearer_token
from gateway_common.idempotency import request_key
from gateway_common.principal import Principal
from gateway_common.service_auth import Callers, allow
from identity_svc import mapping as m
from identity_svc.service import TenantUseCases, UserUseCases
from identity_svc.service_api_keys import ApiKeyUseCases
from identity_svc.service_llm_configs import ModelConfigUseCases
from identity_svc.service_llm_deployments import DeploymentUseCases
from identity_svc.service_llm_models import ModelUseCases, ResolveUseCase
from identity_svc.service_revocations import RevocationUseCases
from llmgw.identity.v1 import identity_pb2 as pb
from llmgw.identity.v1 import identity_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class UseCaseSet:
    tenants: TenantUseCases
    users: UserUseCases
    keys: ApiKeyUseCases
    models: ModelUseCases
    configs: ModelConfigUseCases
    deployments: DeploymentUseCases
    resolve: ResolveUseCase
    revocations: RevocationUseCases


def _tenant_values(t: pb.Tenant) -> dict[str, str]:
    return {"name": t.name, "contact": t.contact, "time_zone": t.time_zone}


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, uc: UseCaseSet, currency: str = "USD") -> None:
        self.uc = uc
        self._currency = currency  # the platform's, for the prices models show

    async def _who(self, context: Ctx) -> Principal:
        return await self.uc.keys.authenticate(bearer_token(context.invocation_metadata()))

    async def CreateTenant(self, r: pb.CreateTenantRequest, c: Ctx) -> pb.CreateTenantResponse:
        t = r.tenant
        tenant = await self.uc.tenants.create(
            await self._who(c), t.name, t.contact, t.time_zone, request_key(r)
        )
        return pb.CreateTenantResponse(tenant=m.tenant_pb(tenant))

    async def GetTenant(self, r: pb.GetTenantRequest, c: Ctx) -> pb.GetTenantResponse:
        tenant = await self.uc.tenants.get(await self._who(c), r.tenant_id)
        return pb.GetTenantResponse(tenant=m.tenant_pb(tenant))

    async def ListTenants(self, r: pb.ListTenantsRequest, c: Ctx) -> pb.ListTenantsResponse:
        page = await self.uc.tenants.list_page(await self._who(c), r.page_size, r.page_token)
        tenants = [m.tenant_pb(t) for t in page.items]
        return pb.ListTenantsResponse(tenants=tenants, next_page_token=page.next_page_token)

    async def UpdateTenant(self, r: pb.UpdateTenantRequest, c: Ctx) -> pb.UpdateTenantResponse:
        p, paths = await self._who(c), list(r.update_mask.paths)
        tenant = await self.uc.tenants.update(
            p, r.tenant.tenant_id, _tenant_values(r.tenant), paths
        )
        return pb.UpdateTenantResponse(tenant=m.tenant_pb(tenant))

    async def DeleteTenant(self, r: pb.DeleteTenantRequest, c: Ctx) -> pb.DeleteTenantResponse:
        await self.uc.tenants.delete(await self._who(c), r.tenant_id, r.cascade)
        return pb.DeleteTenantResponse()

    async def CreateUser(self, r: pb.CreateUserRequest, c: Ctx) -> pb.CreateUserResponse:
        u = r.user
        user = await self.uc.users.create(
            await self._who(c), u.tenant_id, u.name, u.email, request_key(r)
        )
        return pb.CreateUserResponse(user=m.user_pb(user))

    async def GetUser(self, r: pb.GetUserRequest, c: Ctx) -> pb.GetUserResponse:
        user = await self.uc.users.get(await self._who(c), r.tenant_id, r.user_id)
        return pb.GetUserResponse(user=m.user_pb(user))

    async def ListUsers(self, r: pb.ListUsersRequest, c: Ctx) -> pb.ListUsersResponse:
        p = await self._who(c)
        page = await self.uc.users.list_page(p, r.tenant_id, r.page_size, r.page_token)
        users = [m.user_pb(u) for u in page.items]
        return pb.ListUsersResponse(users=users, next_page_token=page.next_page_token)

    async def UpdateUser(self, r: pb.UpdateUserRequest, c: Ctx) -> pb.UpdateUserResponse:
        p, u = await self._who(c), r.user
        values = {"name": u.name, "email": u.email}
        user = await self.uc.users.update(
            p, u.tenant_id, u.user_id, values, list(r.update_mask.paths)
        )
        return pb.UpdateUserResponse(user=m.user_pb(user))

    async def DeleteUser(self, r: pb.DeleteUserRequest, c: Ctx) -> pb.DeleteUserResponse:
        await self.uc.users.delete(await self._who(c), r.tenant_id, r.user_id)
        return pb.DeleteUserResponse()

    async def CreateApiKey(self, r: pb.CreateApiKeyRequest, c: Ctx) -> pb.CreateApiKeyResponse:
        p = await self._who(c)
        key, secret = await self.uc.keys.create(p, m.key_draft(r), request_key(r))
        return pb.CreateApiKeyResponse(api_key=m.key_pb(key), secret=secret)

    async def ListApiKeys(self, r: pb.ListApiKeysRequest, c: Ctx) -> pb.ListApiKeysResponse:
        p, page_args = await self._who(c), (r.page_size, r.page_token)
        page = await self.uc.keys.list_page(p, r.tenant_id, r.user_id, r.include_revoked, page_args)
        keys = [m.key_pb(k) for k in page.items]
        return pb.ListApiKeysResponse(api_keys=keys, next_page_token=page.next_page_token)

    async def RevokeApiKey(self, r: pb.RevokeApiKeyRequest, c: Ctx) -> pb.RevokeApiKeyResponse:
        key = await self.uc.keys.revoke(await self._who(c), r.key_id)
        return pb.RevokeApiKeyResponse(api_key=m.key_pb(key))

    async def Authenticate(self, r: pb.AuthenticateRequest, c: Ctx) -> pb.AuthenticateResponse:
        principal = await self.uc.keys.authenticate(r.api_key)
        return pb.AuthenticateResponse(principal=m.principal_pb(principal))

    async def CreateModel(self, r: pb.CreateModelRequest, c: Ctx) -> pb.CreateModelResponse:
        p = await self._who(c)
        model = await self.uc.models.create(p, m.model_draft(r.model), request_key(r))
        return pb.CreateModelResponse(model=m.model_pb(model, self._currency))

    async def GetModel(self, r: pb.GetModelRequest, c: Ctx) -> pb.GetModelResponse:
        model = await self.uc.models.get(await self._who(c), r.model_id)
        return pb.GetModelResponse(model=m.model_pb(model, self._currency))

    async def ListModels(self, r: pb.ListModelsRequest, c: Ctx) -> pb.ListModelsResponse:
        p = await self._who(c)
        page = await self.uc.models.list_page(p, r.tenant_id, r.page_size, r.page_token)
        models = [m.model_pb(x, self._currency) for x in page.items]
        return pb.ListModelsResponse(models=models, next_page_token=page.next_page_token)

    async def UpdateModel(self, r: pb.UpdateModelRequest, c: Ctx) -> pb.UpdateModelResponse:
        p = await self._who(c)
        model = await self.uc.models.update(p, m.model_draft(r.model), list(r.update_mask.paths))
        return pb.UpdateModelResponse(model=m.model_pb(model, self._currency))

    async def DeleteModel(self, r: pb.DeleteModelRequest, c: Ctx) -> pb.DeleteModelResponse:
        await self.uc.models.delete(await self._who(c), r.model_id)
        return pb.DeleteModelResponse()

    async def CreateModelConfig(
        self, r: pb.CreateModelConfigRequest, c: Ctx
    ) -> pb.CreateModelConfigResponse:
        p, draft = await self._who(c), m.config_draft(r.config)
        m.moved_to_deployments(r.credential, r.config.base_url)
        config = await self.uc.configs.create(p, draft, request_key(r))
        return pb.CreateModelConfigResponse(config=m.config_pb(config))

    async def GetModelConfig(
        self, r: pb.GetModelConfigRequest, c: Ctx
    ) -> pb.GetModelConfigResponse:
        config = await self.uc.configs.get(await self._who(c), r.tenant_id, r.config_id)
        return pb.GetModelConfigResponse(config=m.config_pb(config))

    async def ListModelConfigs(
        self, r: pb.ListModelConfigsRequest, c: Ctx
    ) -> pb.ListModelConfigsResponse:
        p = await self._who(c)
        page = await self.uc.configs.list_page(p, r.tenant_id, r.page_size, r.page_token)
        configs = [m.config_pb(x) for x in page.items]
        return pb.ListModelConfigsResponse(configs=configs, next_page_token=page.next_page_token)

    async def UpdateModelConfig(
        self, r: pb.UpdateModelConfigRequest, c: Ctx
    ) -> pb.UpdateModelConfigResponse:
        p, draft = await self._who(c), m.config_draft(r.config)
        m.moved_to_deployments(r.credential, r.config.base_url)
        paths = list(r.update_mask.paths)
        config = await self.uc.configs.update(p, draft, paths)
        return pb.UpdateModelConfigResponse(config=m.config_pb(config))

    async def DeleteModelConfig(
        self, r: pb.DeleteModelConfigRequest, c: Ctx
    ) -> pb.DeleteModelConfigResponse:
        await self.uc.configs.delete(await self._who(c), r.tenant_id, r.config_id)
        return pb.DeleteModelConfigResponse()

    async def CreateModelDeployment(
        self, r: pb.CreateModelDeploymentRequest, c: Ctx
    ) -> pb.CreateModelDeploymentResponse:
        p, draft = await self._who(c), m.deployment_draft(r.deployment, creating=True)
        row = await self.uc.deployments.create(p, draft, r.credential, request_key(r))
        return pb.CreateModelDeploymentResponse(deployment=m.deployment_pb(row))

    async def ListModelDeployments(
        self, r: pb.ListModelDeploymentsRequest, c: Ctx
    ) -> pb.ListModelDeploymentsResponse:
        p, args = await self._who(c), (r.tenant_id, r.config_id, r.page_size, r.page_token)
        page = await self.uc.deployments.list_page(p, *args)
        rows, token = [m.deployment_pb(x) for x in page.items], page.next_page_token
        return pb.ListModelDeploymentsResponse(deployments=rows, next_page_token=token)

    async def UpdateModelDeployment(
        self, r: pb.UpdateModelDeploymentRequest, c: Ctx
    ) -> pb.UpdateModelDeploymentResponse:
        p, draft = await self._who(c), m.deployment_draft(r.deployment, creating=False)
        paths = list(r.update_mask.paths)
        row = await self.uc.deployments.update(p, draft, r.credential, paths)
        return pb.UpdateModelDeploymentResponse(deployment=m.deployment_pb(row))

    async def DeleteModelDeployment(
        self, r: pb.DeleteModelDeploymentRequest, c: Ctx
    ) -> pb.DeleteModelDeploymentResponse:
        await self.uc.deployments.delete(await self._who(c), r.tenant_id, r.deployment_id)
        return pb.DeleteModelDeploymentResponse()


class IdentityInternalServicer(identity_pb2_grpc.IdentityInternalServiceServicer):
    """For the suite's services only; each RPC names the callers it allows."""

    def __init__(self, uc: UseCaseSet, callers: Callers) -> None:
        self.uc = uc
        self.callers = callers

    @allow("llm")  # a decrypted provider credential: only the service that calls providers
    async def ResolveModel(self, r: pb.ResolveModelRequest, c: Ctx) -> pb.ResolveModelResponse:
        return m.resolved_pb(await self.uc.resolve.resolve(r.tenant_id, r.model_name))

    @allow("quota")  # before quota binds a user to a plan
    async def CheckMembership(
        self, r: pb.CheckMembershipRequest, c: Ctx
    ) -> pb.CheckMembershipResponse:
        await self.uc.users.check_membership(r.tenant_id, r.user_id)
        return pb.CheckMembershipResponse()

    @allow("llm", "quota", "history")  # every identity client follows the feed
    async def ListRevocations(
        self, r: pb.ListRevocationsRequest, c: Ctx
    ) -> pb.ListRevocationsResponse:
        events = await self.uc.revocations.page(r.after_sequence, r.page_size)
        return pb.ListRevocationsResponse(revocations=[m.revocation_pb(e) for e in events])
