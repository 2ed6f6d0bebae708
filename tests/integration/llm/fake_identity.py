"""An in-process fake of identity's gRPC contract (Authenticate, ResolveModel,
CheckMembership, ListRevocations, ListModels) for llm_svc's integration tests; quota and
history are the real services."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import struct_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from gateway_common.auth import bearer_token
from gateway_common.errors import DomainError
from gateway_common.principal import Principal, Role
from gateway_common.service_auth import Callers
from gateway_common.status import to_grpc_status
from llmgw.identity.v1 import identity_pb2, identity_pb2_grpc
from tests.support import ACCEPTED_SERVICE_TOKENS

TENANT_ID = "5d1c2a43-0000-4000-8000-00000000000a"
USER_ID = "5d1c2a43-0000-4000-8000-0000000000a1"
NOSUB_USER_ID = "5d1c2a43-0000-4000-8000-0000000000a2"
Ctx = grpc.aio.ServicerContext[Any, Any]


async def abort(context: Ctx, code: int, message: str, reason: str, **extra: Any) -> None:
    details = [
        error_details_pb2.ErrorInfo(reason=reason, domain="fake", metadata=extra.get("md", {}))
    ]
    if "quota" in extra:
        details.append(
            error_details_pb2.QuotaFailure(
                violations=[
                    error_details_pb2.QuotaFailure.Violation(subject="user", description="x")
                ]
            )
        )
    status = status_pb2.Status(code=code, message=message)
    for d in details:
        status.details.add().Pack(d)
    s = to_grpc_status(status)
    await context.abort(s.code, s.details, s.trailing_metadata)


def internal(context: Ctx, rpc: str, *callers: str) -> None:
    """The real identity's rule: only ``callers`` may call ``rpc``."""
    try:
        Callers.parse(ACCEPTED_SERVICE_TOKENS).require(
            context.invocation_metadata(), rpc, frozenset(callers)
        )
    except DomainError as exc:
        raise PermissionError(exc.reason) from exc


class Identity(
    identity_pb2_grpc.IdentityServiceServicer, identity_pb2_grpc.IdentityInternalServiceServicer
):
    def __init__(self, provider_url: str) -> None:
        user = identity_pb2.Principal(
            tenant_id=TENANT_ID,
            user_id=USER_ID,
            role=identity_pb2.ROLE_USER,
            key_id="kA",
            tenant_time_zone="UTC",
        )
        nosub = identity_pb2.Principal(
            tenant_id=TENANT_ID, user_id=NOSUB_USER_ID, role=identity_pb2.ROLE_USER, key_id="kC"
        )
        admin = identity_pb2.Principal(
            tenant_id=TENANT_ID, role=identity_pb2.ROLE_TENANT_ADMIN, key_id="kB"
        )
        self.keys = {"user-key": user, "admin-key": admin, "nosub-key": nosub}
        extra = struct_pb2.Struct()
        extra.update({"temperature": 0.3, "seed": 42})
        self.resolved = identity_pb2.ResolveModelResponse(
            model=identity_pb2.Model(
                model_id="mA", tenant_id=TENANT_ID, name="demo-model", provider="fake"
            ),
            config_id="cA",
            deployments=[
                identity_pb2.ResolvedDeployment(
                    deployment_id="dA",
                    base_url=provider_url,
                    credential="sk-tenant-A",
                    upstream_model="demo-model",
                    weight=1,
                )
            ],
            token_limit=50,
            extra_parameters=extra,
        )
        self.metadata_seen: list[dict[str, str]] = []

    def principals(self) -> dict[str, Principal]:
        roles = {
            identity_pb2.ROLE_USER: Role.USER,
            identity_pb2.ROLE_TENANT_ADMIN: Role.TENANT_ADMIN,
        }
        return {
            key: Principal(roles[p.role], p.tenant_id, p.user_id, key_id=p.key_id)
            for key, p in self.keys.items()
        }

    async def Authenticate(self, request: Any, context: Ctx) -> Any:
        p = self.keys.get(request.api_key)
        if p is None:
            await abort(context, code_pb2.UNAUTHENTICATED, "bad key", "INVALID_API_KEY")
        return identity_pb2.AuthenticateResponse(principal=p)

    async def ResolveModel(self, request: Any, context: Ctx) -> Any:
        self.metadata_seen.append({k: v for k, v in context.invocation_metadata() or ()})  # type: ignore[misc]
        await self._internal(context, "ResolveModel", "llm")
        if request.model_name == "demo-model":
            return self.resolved
        if request.model_name == "b-model":
            await abort(context, code_pb2.PERMISSION_DENIED, "not enabled", "MODEL_NOT_CONFIGURED")
        await abort(context, code_pb2.NOT_FOUND, "no such model", "NOT_FOUND")

    async def ListRevocations(self, request: Any, context: Ctx) -> Any:
        await self._internal(context, "ListRevocations", "llm", "quota", "history")
        return identity_pb2.ListRevocationsResponse()  # these tests revoke nothing

    async def CheckMembership(self, request: Any, context: Ctx) -> Any:
        await self._internal(context, "CheckMembership", "quota")
        if request.tenant_id != TENANT_ID or request.user_id not in (USER_ID, NOSUB_USER_ID):
            await abort(context, code_pb2.NOT_FOUND, "no such user", "USER_NOT_FOUND")
        return identity_pb2.CheckMembershipResponse()

    async def _internal(self, context: Ctx, rpc: str, *callers: str) -> None:
        try:
            internal(context, rpc, *callers)
        except PermissionError as refused:
            if str(refused) == "INTERNAL_ONLY":
                await abort(context, code_pb2.UNAUTHENTICATED, "internal only", "INTERNAL_ONLY")
            await abort(context, code_pb2.PERMISSION_DENIED, "not allowed", str(refused))

    async def ListModels(self, request: Any, context: Ctx) -> Any:
        bearer_token(context.invocation_metadata())
        return identity_pb2.ListModelsResponse(models=[self.resolved.model])


def register(server: grpc.aio.Server, identity: Identity) -> None:
    identity_pb2_grpc.add_IdentityServiceServicer_to_server(identity, server)
    identity_pb2_grpc.add_IdentityInternalServiceServicer_to_server(identity, server)
