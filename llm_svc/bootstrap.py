"""Composition root of llm_svc: the only place that wires its parts."""

from __future__ import annotations

import grpc

from gateway_common.server import ServiceSpec
from llm_svc.config import LlmSettings
from llmgw.llm.v1 import llm_pb2_grpc

SERVICE_NAMES = ("llmgw.llm.v1.LlmService",)


def build(settings: LlmSettings) -> ServiceSpec:
    def register(server: grpc.aio.Server) -> None:
        llm_pb2_grpc.add_LlmServiceServicer_to_server(
            llm_pb2_grpc.LlmServiceServicer(),  # type: ignore[abstract]
            server,
        )

    return ServiceSpec(domain="llm.llmgw", service_names=SERVICE_NAMES, register=register)
