"""history_svc: record each interaction (internal), read one back (with the user's key)."""

from __future__ import annotations

import grpc

from gateway_common.channels import call_metadata
from llm_svc import mapping
from llm_svc.clients.errors import translate
from llm_svc.domain import Interaction
from llm_svc.ports import HistoryPort
from llmgw.history.v1 import history_pb2, history_pb2_grpc

IDEMPOTENT = (
    ("llmgw.history.v1.HistoryInternalService", "RecordInteraction"),
    ("llmgw.history.v1.HistoryService", "GetInteraction"),
)


class GrpcHistory(HistoryPort):
    def __init__(self, channel: grpc.aio.Channel, internal_token: str) -> None:
        self._internal = history_pb2_grpc.HistoryInternalServiceStub(channel)
        self._public = history_pb2_grpc.HistoryServiceStub(channel)
        self._token = internal_token

    async def record(self, interaction: Interaction, timeout: float) -> Interaction:
        request = history_pb2.RecordInteractionRequest(
            interaction=mapping.interaction_to_proto(interaction)
        )
        try:
            reply = await self._internal.RecordInteraction(
                request, timeout=timeout, metadata=call_metadata(internal_token=self._token)
            )
        except grpc.aio.AioRpcError as err:
            raise translate(err, "history") from None
        stored = mapping.interaction_from_proto(reply.interaction)
        return stored if stored.interaction_id else interaction

    async def get(
        self, api_key: str, tenant_id: str, interaction_id: str, timeout: float
    ) -> Interaction | None:
        request = history_pb2.GetInteractionRequest(
            tenant_id=tenant_id, interaction_id=interaction_id
        )
        try:
            reply = await self._public.GetInteraction(
                request, timeout=timeout, metadata=call_metadata(api_key=api_key)
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise translate(err, "history") from None
        return mapping.interaction_from_proto(reply.interaction)
