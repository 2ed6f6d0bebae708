"""Composition root of identity_svc: the only place that wires its parts."""

from __future__ import annotations

import grpc

from gateway_common import db
from gateway_common.server import ServiceSpec
from identity_svc.config import IdentitySettings
from llmgw.identity.v1 import identity_pb2_grpc

SERVICE_NAMES = (
    "llmgw.identity.v1.IdentityService",
    "llmgw.identity.v1.IdentityInternalService",
)


def build(settings: IdentitySettings) -> ServiceSpec:
    engine = db.make_engine(settings.database_url, pool_size=settings.db_pool_size)

    def register(server: grpc.aio.Server) -> None:
        identity_pb2_grpc.add_IdentityServiceServicer_to_server(
            identity_pb2_grpc.IdentityServiceServicer(),  # type: ignore[abstract]
            server,
        )
        identity_pb2_grpc.add_IdentityInternalServiceServicer_to_server(
            identity_pb2_grpc.IdentityInternalServiceServicer(),  # type: ignore[abstract]
            server,
        )

    async def probe() -> None:
        await db.ping(engine)

    return ServiceSpec(
        domain="identity.llmgw",
        service_names=SERVICE_NAMES,
        register=register,
        probe=probe,
        close=engine.dispose,
    )
