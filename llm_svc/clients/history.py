"""history_svc: read a stored interaction back with the user's own key (replays of an
idempotency key whose record already left quota's outbox). Recording goes through
quota's settlement outbox, not through llm."""

from __future__ import annotations

import grpc

from gateway_common.channels import call_metadata
from llm_svc import mapping
from llm_svc.clients.errors import translate
from llm_svc.domain import Interaction
from llm_svc.ports import HistoryPort
from llmgw.history.v1 import history_pb2, history_pb2_grpc

IDEMPOTENT = (("llmgw.history.v1.HistoryService", "GetInteraction"),)


class GrpcHistory(HistoryPort):
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._public = history_pb2_grpc.HistoryServiceStub(channel)

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
