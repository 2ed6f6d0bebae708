"""Composition root of llm_svc: the only place that wires its parts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway_common import channels, system_events, system_events_rpc
from gateway_common.server import ServiceSpec
from llm_svc import metrics
from llm_svc.breaker import Breakers, Listener, State
from llm_svc.clients import history as history_client
from llm_svc.clients import identity as identity_client
from llm_svc.clients import quota as quota_client
from llm_svc.config import LlmSettings
from llm_svc.domain import Deployment
from llm_svc.http_routes import Routes
from llm_svc.http_server import HttpDoor
from llm_svc.ports import EmbedderPort, HistoryPort, IdentityPort, ProviderPort, QuotaPort
from llm_svc.provider import OpenAIProvider
from llm_svc.provider_embed import OpenAIEmbedder
from llm_svc.routing import Router
from llm_svc.service import ChatService, Timeouts
from llm_svc.service_embed import EmbedService
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
    embedder: EmbedderPort | None = None
    # Told of every circuit breaker transition (default: the logs_sistema emitter).
    on_transition: Listener | None = None


def build(settings: LlmSettings, overrides: Overrides | None = None) -> ServiceSpec:
    """Everything is wired in ``register``, inside the server's running loop: grpc.aio
    channels belong to the loop they are made in (``__main__`` calls build before
    ``asyncio.run``). llm owns no store, so it is SERVING once started (no probe)."""
    o = overrides or Overrides()
    closers: list[Callable[[], Awaitable[None]]] = []

    emitter = system_events.Emitter("llm")  # its writer: history, once the loop runs
    system_events.install(emitter)

    def register(server: grpc.aio.Server) -> None:
        wired = _wire(settings, o, closers)
        # No database of its own: system events go to history's RecordSystemEvents.
        history = wired.channels.get("history")
        if history is not None:  # (a test's fake history: events only logged)
            emitter.writer = system_events_rpc.HistoryEventWriter(
                history, settings.service_credential(), 5.0
            )
            emitter.start()
        llm_pb2_grpc.add_LlmServiceServicer_to_server(LlmServicer(wired.chat, wired.embed), server)
        if settings.http_enabled:
            closers.insert(0, http_door(settings, wired))  # stopped first

    async def close() -> None:
        await emitter.close()
        system_events.install(None)
        for closer in closers:
            await closer()

    return ServiceSpec(
        domain="llm.llmgw", service_names=SERVICE_NAMES, register=register, close=close
    )


@dataclass
class Wired:
    chat: ChatService
    embed: EmbedService
    channels: dict[str, grpc.aio.Channel]


def http_door(settings: LlmSettings, wired: Wired) -> Callable[[], Awaitable[None]]:
    """The OpenAI-compatible door over the same use cases, started in this loop (ready
    while identity, quota and history answer their health checks); returns its stop."""
    ready = readiness(wired.channels)
    routes = Routes(wired.chat, wired.embed, ready, settings.http_timeout_seconds)
    app = routes.app(settings.http_max_body_bytes, settings.http_max_in_flight)
    host = settings.http_host or settings.host
    door = HttpDoor(app, host, settings.http_port, settings.grace_seconds)
    door.start_soon()

    async def stop() -> None:
        routes.draining = True
        await door.stop()

    return stop


def _wire(
    settings: LlmSettings, o: Overrides, closers: list[Callable[[], Awaitable[None]]]
) -> Wired:
    token = settings.service_credential()
    opened: dict[str, grpc.aio.Channel] = {}

    def channel(target: str, idempotent: tuple[tuple[str, str], ...]) -> grpc.aio.Channel:
        ch = channels.open_channel(target, settings, idempotent=idempotent)
        opened[target] = ch
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
        channel(
            settings.history_target, (*history_client.IDEMPOTENT, *system_events_rpc.IDEMPOTENT)
        )
    )
    provider = o.provider or OpenAIProvider(
        settings.default_provider_url, egress_policy=settings.egress_policy()
    )
    timeouts = Timeouts(
        provider_margin=settings.provider_margin_seconds,
        settle_floor=settings.settle_timeout_seconds,
    )
    router = _router(settings, provider, o.on_transition or system_events.circuit_transition)
    service = ChatService(
        identity,
        quota,
        history,
        provider,
        timeouts,
        max_text_bytes=settings.max_text_bytes,
        router=router,
    )
    embedder = o.embedder or OpenAIEmbedder(
        provider if isinstance(provider, OpenAIProvider) else OpenAIProvider()
    )
    embed = EmbedService(
        identity,
        quota,
        history,
        embedder,
        timeouts,
        max_text_bytes=settings.max_text_bytes,
        router=router,
    )

    async def close() -> None:
        await service.drain()
        if isinstance(identity, identity_client.GrpcIdentity):
            await identity.close()
        await embed.drain()
        if isinstance(provider, OpenAIProvider):
            await provider.close()
        for ch in opened.values():
            await ch.close()

    closers.append(close)
    names = {
        settings.identity_target: "identity",
        settings.quota_target: "quota",
        settings.history_target: "history",
    }
    return Wired(service, embed, {names[t]: ch for t, ch in opened.items()})


def _router(settings: LlmSettings, provider: ProviderPort, listener: Listener | None) -> Router:
    """One router (and one set of circuit breakers) for chat and embeddings alike."""
    breakers = Breakers(settings.breaker_settings())
    if listener is not None:
        breakers.on_transition = listener

    def reading(state: State) -> Callable[[], float]:
        return lambda: breakers.counts()[state]

    for state in State:  # the gauge reads the breakers when scraped
        metrics.CIRCUITS.labels(state.value).set_function(reading(state))

    def host_of(deployment: Deployment) -> str:
        if isinstance(provider, OpenAIProvider):
            return provider.base_url(deployment)  # the default URL filled in
        return deployment.base_url

    return Router(breakers, settings.routing_settings(), host_of=host_of)


def readiness(deps: dict[str, grpc.aio.Channel]) -> Callable[[], Awaitable[list[str]]]:
    """The dependencies whose gRPC health check does not answer SERVING (within 1 s)."""
    stubs = {name: health_pb2_grpc.HealthStub(ch) for name, ch in deps.items()}
    serving = health_pb2.HealthCheckResponse.SERVING

    async def check(name: str) -> bool:
        try:
            reply = await stubs[name].Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(), timeout=1.0
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == serving)

    async def down() -> list[str]:
        names = sorted(stubs)
        oks = await asyncio.gather(*(check(n) for n in names))
        return [n for n, ok in zip(names, oks, strict=True) if not ok]

    return down
