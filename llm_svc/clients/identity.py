"""identity_svc, as llm_svc needs it: who is calling, and how to reach a tenant's model."""

from __future__ import annotations

import grpc
from google.protobuf import json_format

from gateway_common.cache import TtlCache
from gateway_common.channels import call_metadata
from gateway_common.client_errors import translate
from gateway_common.errors import NotFound, PermissionDenied
from gateway_common.identity_client import IDEMPOTENT as AUTH_IDEMPOTENT
from gateway_common.identity_client import Authenticator
from gateway_common.principal import Principal
from gateway_common.revocation import DEFAULT_TIMING, FeedTiming
from llm_svc.domain import Deployment, ResolvedModel
from llm_svc.ports import IdentityPort, ModelPage
from llmgw.identity.v1 import identity_pb2, identity_pb2_grpc

RESOLVE_CACHE_MAX = 10_000
IDEMPOTENT = (
    *AUTH_IDEMPOTENT,
    ("llmgw.identity.v1.IdentityService", "ListModels"),
    ("llmgw.identity.v1.IdentityInternalService", "ResolveModel"),
)


class GrpcIdentity(IdentityPort):
    def __init__(
        self,
        channel: grpc.aio.Channel,
        service_token: str,
        auth_ttl: float = 2.0,
        resolve_ttl: float = 2.0,
        timing: FeedTiming = DEFAULT_TIMING,
    ) -> None:
        self._auth = Authenticator(channel, service_token, ttl=auth_ttl, timing=timing)
        self._public = identity_pb2_grpc.IdentityServiceStub(channel)
        self._internal = identity_pb2_grpc.IdentityInternalServiceStub(channel)
        self._token = service_token
        # Resolved models are cached briefly (hot path: one hop less per Chat); a changed
        # configuration applies within this TTL plus identity's own resolve cache.
        self._resolved: TtlCache[tuple[str, str], ResolvedModel] = TtlCache(
            resolve_ttl, RESOLVE_CACHE_MAX
        )

    async def authenticate(self, api_key: str, timeout: float) -> Principal:
        return await self._auth.authenticate(api_key, timeout)

    async def close(self) -> None:
        await self._auth.close()

    async def resolve_model(self, tenant_id: str, model: str, timeout: float) -> ResolvedModel:
        key = (tenant_id, model)
        hit = self._resolved.get(key)
        if hit is not None:
            return hit
        resolved = await self._resolve(tenant_id, model, timeout)
        self._resolved.put(key, resolved)
        return resolved

    async def _resolve(self, tenant_id: str, model: str, timeout: float) -> ResolvedModel:
        try:
            reply = await self._internal.ResolveModel(
                identity_pb2.ResolveModelRequest(tenant_id=tenant_id, model_name=model),
                timeout=timeout,
                metadata=call_metadata(service_token=self._token),
            )
        except grpc.aio.AioRpcError as err:
            failure = translate(err, "identity")  # a refused credential of ours: UNAVAILABLE
            if isinstance(failure, NotFound):
                raise NotFound(f"unknown model {model!r}", "MODEL_NOT_FOUND") from None
            if isinstance(failure, PermissionDenied):
                raise PermissionDenied(
                    f"model {model!r} is not enabled for this tenant", "MODEL_NOT_ENABLED"
                ) from None
            raise failure from None
        return ResolvedModel(
            model_id=reply.model.model_id,
            name=reply.model.name,
            config_id=reply.config_id,
            deployments=tuple(_deployment(x) for x in reply.deployments),
            token_limit=reply.token_limit if reply.HasField("token_limit") else None,
            extra_parameters=json_format.MessageToDict(reply.extra_parameters),
            allowed_extras=frozenset(reply.allowed_extra_parameters),
            fallback_models=tuple(reply.fallback_models),
            fallback_on_context_length=reply.fallback_on_context_length,
            input_price_nanos=_price(reply.model, "input_price_nanos_per_million"),
            output_price_nanos=_price(reply.model, "output_price_nanos_per_million"),
        )

    async def list_models(
        self, api_key: str, tenant_id: str, page_size: int, page_token: str, timeout: float
    ) -> ModelPage:
        try:
            reply = await self._public.ListModels(
                identity_pb2.ListModelsRequest(
                    tenant_id=tenant_id, page_size=page_size, page_token=page_token
                ),
                timeout=timeout,
                metadata=call_metadata(api_key=api_key),
            )
        except grpc.aio.AioRpcError as err:
            raise translate(err, "identity") from None
        models = [
            {
                "name": m.name,
                "description": m.description,
                "provider": m.provider,
                "global": not m.tenant_id,
            }
            for m in reply.models
        ]
        return ModelPage(models, reply.next_page_token)


def _deployment(x: identity_pb2.ResolvedDeployment) -> Deployment:
    return Deployment(
        deployment_id=x.deployment_id,
        base_url=x.base_url,
        credential=x.credential,
        upstream_model=x.upstream_model,
        priority=x.priority,
        weight=max(x.weight, 1),
        attempt_timeout=x.attempt_timeout_ms / 1000 if x.attempt_timeout_ms > 0 else None,
    )


def _price(model: identity_pb2.Model, name: str) -> int | None:
    """A model's price per million tokens (nanos of the platform currency), if it has one."""
    return int(getattr(model, name)) if model.HasField(name) else None  # type: ignore[arg-type]
