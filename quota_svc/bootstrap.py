"""Composition root of quota_svc: the only place that wires its parts."""

from __future__ import annotations

import asyncio
import contextlib

import grpc

from gateway_common import db, identity_client
from gateway_common.identity_client import Authenticator
from gateway_common.server import ServiceSpec
from llmgw.quota.v1 import quota_pb2_grpc
from quota_svc import unit_of_work
from quota_svc.config import QuotaSettings
from quota_svc.counting import CountingService
from quota_svc.domain import Clock, SystemClock
from quota_svc.service import PlanService, UsageService
from quota_svc.service_subscriptions import SubscriptionService
from quota_svc.servicer import QuotaInternalServicer, QuotaServicer

SERVICE_NAMES = ("llmgw.quota.v1.QuotaService", "llmgw.quota.v1.QuotaInternalService")


def build(
    settings: QuotaSettings,
    *,
    authenticator: Authenticator | None = None,
    clock: Clock | None = None,
) -> ServiceSpec:
    """The service; tests pass a fake authenticator and a movable clock."""
    engine = db.make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    counting_pool = unit_of_work.make_counting_pool(
        settings.database_url, settings.db_pool_size, settings.db_max_overflow
    )
    identity_channel: grpc.aio.Channel | None = None
    if authenticator is None:
        authenticator, identity_channel = identity_client.connect(
            settings, settings.identity_target, settings.identity_cache_seconds
        )
    clock = clock or SystemClock()
    db.register_pool_metrics(engine, "quota")
    db.register_pool_stats("quota_counting", counting_pool.get_stats)
    uow = unit_of_work.factory(engine, counting_pool)
    counting = CountingService(uow, clock, settings.reservation_ttl_seconds, settings.settle_batch)
    pages = settings.page_tokens()
    public = QuotaServicer(
        authenticator,
        PlanService(uow, clock, pages),
        SubscriptionService(uow, clock, pages),
        UsageService(uow, clock),
    )
    internal = QuotaInternalServicer(counting, settings.internal_token.get_secret_value())
    tasks: list[asyncio.Task[None]] = []

    def register(server: grpc.aio.Server) -> None:
        quota_pb2_grpc.add_QuotaServiceServicer_to_server(public, server)
        quota_pb2_grpc.add_QuotaInternalServiceServicer_to_server(internal, server)
        if settings.settle_interval_seconds > 0:  # register runs inside the server's loop
            sweep = counting.sweep_forever(settings.settle_interval_seconds)
            tasks.append(asyncio.get_running_loop().create_task(sweep))

    async def probe() -> None:
        await db.ping(engine)

    async def close() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if identity_channel is not None:
            await identity_channel.close()
        await engine.dispose()
        await counting_pool.close()

    return ServiceSpec(
        domain="quota.llmgw",
        service_names=SERVICE_NAMES,
        register=register,
        probe=probe,
        close=close,
    )
