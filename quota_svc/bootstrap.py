"""Composition root of quota_svc: the only place that wires its parts."""

from __future__ import annotations

import grpc

from gateway_common import db
from gateway_common.server import ServiceSpec
from llmgw.quota.v1 import quota_pb2_grpc
from quota_svc.config import QuotaSettings

SERVICE_NAMES = ("llmgw.quota.v1.QuotaService", "llmgw.quota.v1.QuotaInternalService")


def build(settings: QuotaSettings) -> ServiceSpec:
    engine = db.make_engine(settings.database_url, pool_size=settings.db_pool_size)

    def register(server: grpc.aio.Server) -> None:
        quota_pb2_grpc.add_QuotaServiceServicer_to_server(
            quota_pb2_grpc.QuotaServiceServicer(),  # type: ignore[abstract]
            server,
        )
        quota_pb2_grpc.add_QuotaInternalServiceServicer_to_server(
            quota_pb2_grpc.QuotaInternalServiceServicer(),  # type: ignore[abstract]
            server,
        )

    async def probe() -> None:
        await db.ping(engine)

    return ServiceSpec(
        domain="quota.llmgw",
        service_names=SERVICE_NAMES,
        register=register,
        probe=probe,
        close=engine.dispose,
    )
