"""Composition root of history_svc: the only place that wires its parts."""

from __future__ import annotations

from typing import Any

import grpc
from pymongo import AsyncMongoClient

from gateway_common import identity_client, mongo, system_events
from gateway_common.identity_client import Authenticator
from gateway_common.server import ServiceSpec
from history_svc import mapping
from history_svc.config import HistorySettings
from history_svc.mongo_audit import MongoAuditRepository
from history_svc.mongo_lazy import LazyMongoRepository, LazyMongoRollups
from history_svc.mongo_search import ScanPacer
from history_svc.search_limits import SearchLimits
from history_svc.service import HistoryService, Limits
from history_svc.service_audit import AuditService, StoreEventWriter
from history_svc.servicer import HistoryInternalServicer, HistoryServicer
from llmgw.history.v1 import history_pb2_grpc

SERVICE_NAMES = ("llmgw.history.v1.HistoryService", "llmgw.history.v1.HistoryInternalService")


def build(
    settings: HistorySettings,
    *,
    authenticator: Authenticator | None = None,
    client: AsyncMongoClient[dict[str, Any]] | None = None,
    text_search: bool | None = None,
) -> ServiceSpec:
    """``text_search`` None detects a text index; False forces the $regex fallback."""
    client = client or mongo.make_client(settings.mongo_url, settings.mongo_timeout_ms)
    identity: grpc.aio.Channel | None = None
    if authenticator is None:
        authenticator, identity = identity_client.connect(
            settings, settings.identity_target, settings.auth_cache_seconds
        )
    pacer = ScanPacer(settings.search_share)
    repository = LazyMongoRepository(client, settings.database, text_search, pacer)
    searches = SearchLimits(
        settings.search_max_seconds, settings.search_per_tenant, settings.search_total
    )
    trail = MongoAuditRepository(client, settings.database)
    audit = AuditService(trail, repository, settings.page_tokens())
    # history's own system events go straight into logs_sistema (it owns the store).
    emitter = system_events.Emitter("history", StoreEventWriter(trail))
    system_events.install(emitter)
    service = HistoryService(
        repository,
        LazyMongoRollups(repository),
        limits(settings),
        pages=settings.page_tokens(),
        search_limits=searches,
        size_of=mapping.encoded_size,
        on_erased=audit.erased,
    )
    public = HistoryServicer(service, authenticator, audit)
    internal = HistoryInternalServicer(service, settings.callers(), audit)

    def register(server: grpc.aio.Server) -> None:
        history_pb2_grpc.add_HistoryServiceServicer_to_server(public, server)
        history_pb2_grpc.add_HistoryInternalServiceServicer_to_server(internal, server)

    async def probe() -> None:
        await mongo.ping(client)
        await repository.ready()

    async def close() -> None:
        await emitter.close()
        system_events.install(None)
        if identity is not None:  # ours: its revocation feed polls on the channel
            await authenticator.close()
            await identity.close()
        await client.close()

    return ServiceSpec(
        domain="history.llmgw",
        service_names=SERVICE_NAMES,
        register=register,
        probe=probe,
        close=close,
        on_ready=emitter.start,
    )


def limits(settings: HistorySettings) -> Limits:
    return Limits(
        max_text_bytes=settings.max_text_bytes,
        default_page_size=settings.default_page_size,
        max_page_size=settings.max_page_size,
        max_query_chars=settings.max_query_chars,
        max_stats_days=settings.max_stats_days,
        max_page_bytes=settings.max_page_bytes,
    )
