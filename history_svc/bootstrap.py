"""Composition root of history_svc: the only place that wires its parts."""

from __future__ import annotations

import grpc

from gateway_common import mongo
from gateway_common.server import ServiceSpec
from history_svc.config import HistorySettings
from llmgw.history.v1 import history_pb2_grpc

SERVICE_NAMES = ("llmgw.history.v1.HistoryService", "llmgw.history.v1.HistoryInternalService")


def build(settings: HistorySettings) -> ServiceSpec:
    client = mongo.make_client(settings.mongo_url)

    def register(server: grpc.aio.Server) -> None:
        history_pb2_grpc.add_HistoryServiceServicer_to_server(
            history_pb2_grpc.HistoryServiceServicer(),  # type: ignore[abstract]
            server,
        )
        history_pb2_grpc.add_HistoryInternalServiceServicer_to_server(
            history_pb2_grpc.HistoryInternalServiceServicer(),  # type: ignore[abstract]
            server,
        )

    async def probe() -> None:
        await mongo.ping(client)

    return ServiceSpec(
        domain="history.llmgw",
        service_names=SERVICE_NAMES,
        register=register,
        probe=probe,
        close=client.close,
    )
