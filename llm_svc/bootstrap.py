"""Composition root of llm_svc: the only place that wires its parts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc

from gateway_common import channels
from gateway_common.server import ServiceSpec
from llm_svc.clients import history as history_client
from llm_svc.clients import identity as identity_client
from llm_svc.clients import quota as quota_client
from llm_svc.config import LlmSettings
from llm_svc.ports import HistoryPort, IdentityPort, ProviderPort, QuotaPort
from llm_svc.provider import OpenAIProvider
from llm_svc.service import ChatService, Timeouts
from llm_svc.servicer import LlmServicer
from llmgw.llm.v1 import llm_pb2_grpc

SERVICE_NAMES = ("llmgw.llm.v1.LlmService",)


@dataclass
class Overrides:
    """Test seams: replace a dependency's adapter."""

    identity: IdentityPort | None = None
    quota: QuotaPort | None = None
    history: HistoryPort | None = None
    provider: ProviderPort | None = None


def build(settings: LlmSettings, overrides: Overrides | None = None) -> ServiceSpec:
    """Everything is wired in ``register``, inside the server's running loop: grpc.aio
    channels belong to the loop they are made in (``__main__`` calls build before
    ``asyncio.run``). llm owns no store, so it is SERVING once started (no probe)."""
    o = overrides or Overrides()
    closers: list[Callable[[], Awaitable[None]]] = []

    def register(server: grpc.aio.Server) -> None:
        service = _wire(settings, o, closers)
        llm_pb2_grpc.add_LlmServiceServicer_to_server(LlmServicer(service), server)

    async def close() -> None:
        for closer in closers:
            await closer()

    return ServiceSpec(
        domain="llm.llmgw", service_names=SERVICE_NAMES, register=register, close=close
    )


def _wire(
    settings: LlmSettings, o: Overrides, closers: list[Callable[[], Awaitable[None]]]
) -> ChatService:
    token = settings.service_credential()
    opened: list[grpc.aio.Channel] = []

    def channel(target: str, idempotent: tuple[tuple[str, str], ...]) -> grpc.aio.Channel:
        ch = channels.open_channel(target, settings, idempotent=idempotent)
        opened.append(ch)
        return ch

    identity = o.identity or identity_client.GrpcIdentity(
        channel(settings.identity_target, identity_client.IDEMPOTENT),
        token,
        settings.auth_cache_seconds,
        settings.resolve_cache_seconds,
        settings.revocation_timing(),
    )
    quota = o.quota or quota_client.GrpcQuota(
        channel(settings.quota_target, quota_client.IDEMPOTENT), token
    )
    history = o.history or history_client.GrpcHistory(
        channel(settings.history_target, history_client.IDEMPOTENT)
    )
    provider = o.provider or OpenAIProvider(
        settings.default_provider_url, egress_policy=settings.egress_policy()
    )
    timeouts = Timeouts(
        provider_margin=settings.provider_margin_seconds,
        settle_floor=settings.settle_timeout_seconds,
    )
    service = ChatService(
        identity, quota, history, provider, timeouts, max_text_bytes=settings.max_text_bytes
    )

    async def close() -> None:
        await service.drain()
        if isinstance(identity, identity_client.GrpcIdentity):
            await identity.close()
        if isinstance(provider, OpenAIProvider):
            await provider.close()
        for ch in opened:
            await ch.close()

    closers.append(close)
    return service
