"""Composition root of quota_svc: the only place that wires its parts."""

from __future__ import annotations

import asyncio
import contextlib

import grpc

from gateway_common import (
    audit_outbox,
    channels,
    db,
    identity_client,
    outbox,
    outbox_relay,
    system_events,
)
from gateway_common.identity_client import Authenticator
from gateway_common.server import ServiceSpec
from llmgw.quota.v1 import quota_pb2_grpc
from quota_svc import history_sink, mapping, unit_of_work
from quota_svc.config import QuotaSettings
from quota_svc.counting import CountingService
from quota_svc.deliveries import DeliveryService
from quota_svc.domain import RECORD_TOPIC, Clock, SystemClock
from quota_svc.identity_members import IdentityMembers
from quota_svc.ports import Members
from quota_svc.service import PlanService, UsageService
from quota_svc.service_subscriptions import SubscriptionService
from quota_svc.servicer import QuotaInternalServicer, QuotaServicer

SERVICE_NAMES = ("llmgw.quota.v1.QuotaService", "llmgw.quota.v1.QuotaInternalService")


def build(
    settings: QuotaSettings,
    *,
    authenticator: Authenticator | None = None,
    members: Members | None = None,
    clock: Clock | None = None,
) -> ServiceSpec:
    """The service; tests pass a fake authenticator or members, and a movable clock."""
    engine = db.make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        prepare=settings.db_prepared_statements,
    )
    counting_pool = unit_of_work.make_counting_pool(
        settings.database_url,
        settings.db_pool_size,
        settings.db_max_overflow,
        prepare=settings.db_prepared_statements,
    )
    identity_channel: grpc.aio.Channel | None = None
    owned_authenticator = authenticator is None  # its revocation feed polls on our channel
    if authenticator is None:
        authenticator, identity_channel = identity_client.connect(
            settings, settings.identity_target, settings.identity_cache_seconds
        )
    if members is None:
        if identity_channel is None:
            identity_channel = channels.open_channel(settings.identity_target, settings)
        members = IdentityMembers(identity_channel, settings.service_credential())
    clock = clock or SystemClock()
    db.register_pool_metrics(engine, "quota")
    db.register_pool_stats("quota_counting", counting_pool.get_stats)
    uow = unit_of_work.factory(engine, counting_pool)
    counting = CountingService(
        uow,
        clock,
        mapping.expired_record,
        settings.reservation_ttl_seconds,
        settings.settle_batch,
    )
    store = outbox.OutboxStore(counting_pool.connection)
    # System events go into the same outbox (topic "system"), on a small pool of their own.
    events_pool = audit_outbox.relay_pool(settings.database_url)
    emitter = system_events.Emitter("quota", audit_outbox.OutboxEventWriter(events_pool))
    system_events.install(emitter)
    pages = settings.page_tokens()
    public = QuotaServicer(
        authenticator,
        PlanService(uow, clock, pages),
        SubscriptionService(uow, clock, members, pages),
        UsageService(uow, clock),
        DeliveryService(store, pages),
    )
    internal = QuotaInternalServicer(counting, settings.callers())
    tasks: list[asyncio.Task[None]] = []
    history_channel: grpc.aio.Channel | None = None

    def register(server: grpc.aio.Server) -> None:
        quota_pb2_grpc.add_QuotaServiceServicer_to_server(public, server)
        quota_pb2_grpc.add_QuotaInternalServiceServicer_to_server(internal, server)

    def start_workers() -> None:
        """The expiry sweep and the outbox relay, once the migrated database answers."""
        nonlocal history_channel
        loop = asyncio.get_running_loop()
        if settings.settle_interval_seconds > 0:
            tasks.append(loop.create_task(counting.sweep_forever(settings.settle_interval_seconds)))
        if settings.relay_enabled:
            history_channel = channels.open_channel(
                settings.history_target,
                settings,
                (*history_sink.IDEMPOTENT, *audit_outbox.IDEMPOTENT),
            )
            relay = outbox_relay.Relay(
                store, _sink(settings, history_channel), RECORD_TOPIC, _policy(settings)
            )
            tasks.append(loop.create_task(relay.run_forever()))
            # The audit trail and system events: the same outbox, relays of their own topics.
            for audit_relay in audit_outbox.relays(
                store,
                history_channel,
                settings.service_credential(),
                settings.history_timeout_seconds,
                _policy(settings),
            ):
                tasks.append(loop.create_task(audit_relay.run_forever()))
        emitter.start()

    async def probe() -> None:
        await db.ping(engine)
        if counting_pool.closed:  # before on_ready: the relay reads the outbox through it
            await counting_pool.open(wait=False)

    async def close() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await emitter.close()
        system_events.install(None)
        if owned_authenticator:
            await authenticator.close()
        for channel in (identity_channel, history_channel):
            if channel is not None:
                await channel.close()
        await engine.dispose()
        await counting_pool.close()
        await events_pool.close()

    return ServiceSpec(
        domain="quota.llmgw",
        service_names=SERVICE_NAMES,
        register=register,
        probe=probe,
        close=close,
        on_ready=start_workers,
    )


def _sink(settings: QuotaSettings, channel: grpc.aio.Channel) -> history_sink.HistorySink:
    return history_sink.HistorySink(
        channel, settings.service_credential(), settings.history_timeout_seconds
    )


def _policy(settings: QuotaSettings) -> outbox_relay.RelayPolicy:
    return outbox_relay.RelayPolicy(
        batch=settings.relay_batch,
        lease_seconds=settings.relay_lease_seconds,
        idle_seconds=settings.relay_idle_seconds,
        max_rejections=settings.relay_max_rejections,
        backoff_seconds=settings.relay_backoff_seconds,
        backoff_max_seconds=settings.relay_backoff_max_seconds,
        retention_seconds=settings.outbox_retention_seconds,
    )
