"""Composition root of identity_svc: the only place that wires its parts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway_common import audit_outbox, channels, db, outbox, outbox_relay, system_events
from gateway_common.cache import TtlCache
from gateway_common.server import ServiceSpec
from identity_svc.config import IdentitySettings
from identity_svc.crypto import KeyRing
from identity_svc.ports import UowFactory
from identity_svc.service import TenantUseCases, UserUseCases
from identity_svc.service_api_keys import ApiKeyUseCases, utc_now
from identity_svc.service_llm_configs import ModelConfigUseCases
from identity_svc.service_llm_deployments import DeploymentUseCases
from identity_svc.service_llm_models import ModelUseCases, ResolveCache, ResolveUseCase
from identity_svc.service_revocations import RevocationUseCases
from identity_svc.servicer import IdentityInternalServicer, IdentityServicer, UseCaseSet
from identity_svc.unit_of_work import sql_uow_factory
from llmgw.identity.v1 import identity_pb2_grpc

DOMAIN = "identity.llmgw"
SERVICE_NAMES = (
    "llmgw.identity.v1.IdentityService",
    "llmgw.identity.v1.IdentityInternalService",
)


def keyring(settings: IdentitySettings) -> KeyRing:
    return KeyRing.from_settings(
        settings.encryption_keys.get_secret_value(), allow_dev_key=settings.dev_key_allowed()
    )


def use_cases(
    settings: IdentitySettings,
    uow: UowFactory,
    ring: KeyRing,
    clock: Callable[[], datetime] = utc_now,
) -> UseCaseSet:
    cache = ResolveCache(settings.resolve_cache_ttl_seconds, settings.resolve_cache_max_entries)
    pages = settings.page_tokens()
    revocations = RevocationUseCases(
        uow,
        TtlCache(settings.auth_cache_ttl_seconds, settings.auth_cache_max_entries),
        settings.revocation_timing(),
        settings.revocation_retention_seconds,
    )
    return UseCaseSet(
        tenants=TenantUseCases(uow, pages, revocations),
        users=UserUseCases(uow, pages, revocations),
        keys=ApiKeyUseCases(uow, revocations, clock, pages),
        models=ModelUseCases(uow, on_change=cache.clear, pages=pages),
        configs=ModelConfigUseCases(uow, on_change=cache.clear, pages=pages),
        deployments=DeploymentUseCases(
            uow, ring, on_change=cache.clear, pages=pages, egress=settings.egress_policy()
        ),
        resolve=ResolveUseCase(uow, ring, cache),
        revocations=revocations,
    )


def build(
    settings: IdentitySettings,
    *,
    engine: AsyncEngine | None = None,
    uow: UowFactory | None = None,
    ring: KeyRing | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> ServiceSpec:
    """Wire the service. Tests pass their own engine, unit-of-work factory or key ring."""
    owned = engine is None and uow is None
    if owned:
        engine = db.make_engine(
            settings.database_url, settings.db_pool_size, prepare=settings.db_prepared_statements
        )
        db.register_pool_metrics(engine, "identity")
    if uow is None:
        assert engine is not None
        uow = sql_uow_factory(engine)
    uc = use_cases(settings, uow, ring or keyring(settings), clock)
    callers = settings.callers()

    def register(server: grpc.aio.Server) -> None:
        identity_pb2_grpc.add_IdentityServiceServicer_to_server(
            IdentityServicer(uc, settings.currency), server
        )
        identity_pb2_grpc.add_IdentityInternalServiceServicer_to_server(
            IdentityInternalServicer(uc, callers), server
        )

    # The audit outbox's relays and the system events, on a small pool of their own.
    pool = audit_outbox.relay_pool(settings.database_url)
    emitter = system_events.Emitter("identity", audit_outbox.OutboxEventWriter(pool))
    system_events.install(emitter)
    tasks: list[asyncio.Task[None]] = []
    history: grpc.aio.Channel | None = None

    def start_workers() -> None:
        nonlocal history
        loop = asyncio.get_running_loop()
        if settings.relay_enabled:
            history = channels.open_channel(
                settings.history_target, settings, audit_outbox.IDEMPOTENT
            )
            store = outbox.OutboxStore(pool.connection)
            token = settings.service_credential()
            timeout = settings.history_timeout_seconds
            for relay in audit_outbox.relays(store, history, token, timeout, _policy(settings)):
                tasks.append(loop.create_task(relay.run_forever()))
        emitter.start()

    async def probe() -> None:
        if engine is not None:
            await db.ping(engine)
        if pool.closed:  # the relays read the outbox through it
            await pool.open(wait=False)

    async def close() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await emitter.close()
        system_events.install(None)
        await uc.revocations.feed.close()
        if history is not None:
            await history.close()
        await pool.close()
        if owned and engine is not None:
            await engine.dispose()

    return ServiceSpec(
        domain=DOMAIN,
        service_names=SERVICE_NAMES,
        register=register,
        probe=probe,
        close=close,
        on_ready=start_workers,
    )


def _policy(settings: IdentitySettings) -> outbox_relay.RelayPolicy:
    return outbox_relay.RelayPolicy(
        batch=settings.relay_batch,
        idle_seconds=settings.relay_idle_seconds,
        backoff_seconds=settings.relay_backoff_seconds,
        backoff_max_seconds=settings.relay_backoff_max_seconds,
        retention_seconds=settings.outbox_retention_seconds,
    )
