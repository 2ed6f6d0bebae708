"""In-process fakes of identity, quota and history's gRPC APIs (their contracts, not
their stores), served on one real gRPC server, for llm_svc's integration tests."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import struct_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from gateway_common.auth import bearer_token, require_internal
from gateway_common.errors import DomainError
from gateway_common.status import to_grpc_status
from llmgw.history.v1 import history_pb2, history_pb2_grpc
from llmgw.identity.v1 import identity_pb2, identity_pb2_grpc
from llmgw.quota.v1 import quota_pb2, quota_pb2_grpc

TOKEN = "test-internal-token"
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


def internal(context: Ctx) -> None:
    try:
        require_internal(context.invocation_metadata(), TOKEN)
    except DomainError as exc:
        raise PermissionError(exc.message) from exc


class Identity(
    identity_pb2_grpc.IdentityServiceServicer, identity_pb2_grpc.IdentityInternalServiceServicer
):
    def __init__(self, provider_url: str) -> None:
        user = identity_pb2.Principal(
            tenant_id="tA",
            user_id="uA",
            role=identity_pb2.ROLE_USER,
            key_id="kA",
            tenant_time_zone="UTC",
        )
        admin = identity_pb2.Principal(
            tenant_id="tA", role=identity_pb2.ROLE_TENANT_ADMIN, key_id="kB"
        )
        self.keys = {"user-key": user, "admin-key": admin}
        extra = struct_pb2.Struct()
        extra.update({"temperature": 0.3, "seed": 42})
        self.resolved = identity_pb2.ResolveModelResponse(
            model=identity_pb2.Model(
                model_id="mA", tenant_id="tA", name="demo-model", provider="fake"
            ),
            config_id="cA",
            base_url=provider_url,
            credential="sk-tenant-A",
            token_limit=50,
            extra_parameters=extra,
        )
        self.metadata_seen: list[dict[str, str]] = []

    async def Authenticate(self, request: Any, context: Ctx) -> Any:
        p = self.keys.get(request.api_key)
        if p is None:
            await abort(context, code_pb2.UNAUTHENTICATED, "bad key", "INVALID_API_KEY")
        return identity_pb2.AuthenticateResponse(principal=p)

    async def ResolveModel(self, request: Any, context: Ctx) -> Any:
        self.metadata_seen.append({k: v for k, v in context.invocation_metadata() or ()})  # type: ignore[misc]
        try:
            internal(context)
        except PermissionError:
            await abort(context, code_pb2.UNAUTHENTICATED, "internal only", "INTERNAL_ONLY")
        if request.model_name == "demo-model":
            return self.resolved
        if request.model_name == "b-model":
            await abort(context, code_pb2.PERMISSION_DENIED, "not enabled", "MODEL_NOT_CONFIGURED")
        await abort(context, code_pb2.NOT_FOUND, "no such model", "NOT_FOUND")

    async def ListModels(self, request: Any, context: Ctx) -> Any:
        bearer_token(context.invocation_metadata())
        return identity_pb2.ListModelsResponse(models=[self.resolved.model])


class Quota(quota_pb2_grpc.QuotaInternalServiceServicer):
    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self.states: dict[str, int] = {}
        self.subscribed = True
        self.deadlines: list[float | None] = []

    def committed(self) -> int:
        return sum(s == quota_pb2.RESERVATION_STATE_COMMITTED for s in self.states.values())

    def reservation(self, rid: str) -> Any:
        return quota_pb2.Reservation(request_id=rid, subscription_id="sA", state=self.states[rid])

    async def Reserve(self, request: Any, context: Ctx) -> Any:
        self.deadlines.append(context.time_remaining())
        try:
            internal(context)
        except PermissionError:
            await abort(context, code_pb2.UNAUTHENTICATED, "internal only", "INTERNAL_ONLY")
        rid = request.request_id
        if rid not in self.states:
            if not self.subscribed:
                await abort(
                    context, code_pb2.FAILED_PRECONDITION, "no sub", "NO_ACTIVE_SUBSCRIPTION"
                )
            used = sum(s in (1, 2) for s in self.states.values())
            if used >= self.limit:
                await abort(
                    context,
                    code_pb2.RESOURCE_EXHAUSTED,
                    "limit",
                    "QUOTA_EXCEEDED",
                    quota=True,
                    md={"reset_time": "2030-02-01T00:00:00Z"},
                )
            self.states[rid] = quota_pb2.RESERVATION_STATE_RESERVED
        return quota_pb2.ReserveResponse(reservation=self.reservation(rid))

    async def Commit(self, request: Any, context: Ctx) -> Any:
        self.states[request.request_id] = quota_pb2.RESERVATION_STATE_COMMITTED
        return quota_pb2.CommitResponse(reservation=self.reservation(request.request_id))

    async def Release(self, request: Any, context: Ctx) -> Any:
        self.states[request.request_id] = quota_pb2.RESERVATION_STATE_RELEASED
        return quota_pb2.ReleaseResponse(reservation=self.reservation(request.request_id))


class History(
    history_pb2_grpc.HistoryInternalServiceServicer, history_pb2_grpc.HistoryServiceServicer
):
    def __init__(self) -> None:
        self.stored: dict[str, Any] = {}
        self.calls = 0

    async def RecordInteraction(self, request: Any, context: Ctx) -> Any:
        self.calls += 1
        i = request.interaction
        created = i.interaction_id not in self.stored
        self.stored.setdefault(i.interaction_id, i)
        return history_pb2.RecordInteractionResponse(
            interaction=self.stored[i.interaction_id], created=created
        )

    async def GetInteraction(self, request: Any, context: Ctx) -> Any:
        found = self.stored.get(request.interaction_id)
        if found is None:
            await abort(context, code_pb2.NOT_FOUND, "none", "NOT_FOUND")
        return history_pb2.GetInteractionResponse(interaction=found)


def register_all(
    server: grpc.aio.Server,
    identity: Identity | None,
    quota: Quota | None,
    history: History | None,
) -> None:
    if identity is not None:
        identity_pb2_grpc.add_IdentityServiceServicer_to_server(identity, server)
        identity_pb2_grpc.add_IdentityInternalServiceServicer_to_server(identity, server)
    if quota is not None:
        quota_pb2_grpc.add_QuotaInternalServiceServicer_to_server(quota, server)
    if history is not None:
        history_pb2_grpc.add_HistoryInternalServiceServicer_to_server(history, server)
        history_pb2_grpc.add_HistoryServiceServicer_to_server(history, server)
