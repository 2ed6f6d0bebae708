"""LlmService over gRPC: parse, one use-case call, map back. Errors are domain errors,
turned into status codes by the shared error boundary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from gateway_common.auth import bearer_token
from gateway_common.channels import remaining
from gateway_common.errors import InvalidArgument
from gateway_common.logs import request_id_var
from gateway_common.pagination import clamp_page_size
from llm_svc import mapping
from llm_svc.domain import ChatRequest
from llm_svc.service import ChatService
from llm_svc.service_embed import EmbedService
from llmgw.llm.v1 import llm_pb2, llm_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class LlmServicer(llm_pb2_grpc.LlmServiceServicer):
    def __init__(self, service: ChatService, embed: EmbedService) -> None:
        self._service = service
        self._embed = embed

    async def Chat(self, request: llm_pb2.ChatRequest, context: Context) -> llm_pb2.ChatResponse:
        api_key = bearer_token(context.invocation_metadata())
        answer = await self._service.chat(
            api_key, _parse(request), lambda: remaining(context), request_id_var.get()
        )
        return mapping.chat_response(answer)

    async def ChatStream(
        self, request: llm_pb2.ChatStreamRequest, context: Context
    ) -> AsyncIterator[llm_pb2.ChatStreamResponse]:
        api_key = bearer_token(context.invocation_metadata())
        events = self._service.chat_stream(
            api_key, _parse(request), lambda: remaining(context), request_id_var.get()
        )
        async for event in events:
            yield mapping.stream_event(event)

    async def ListModels(
        self, request: llm_pb2.ListModelsRequest, context: Context
    ) -> llm_pb2.ListModelsResponse:
        api_key = bearer_token(context.invocation_metadata())
        size = clamp_page_size(request.page_size, 50, 500)
        page = await self._service.list_models(
            api_key, size, request.page_token, lambda: remaining(context)
        )
        return llm_pb2.ListModelsResponse(
            models=[llm_pb2.ModelInfo(**m) for m in page.models],
            next_page_token=page.next_page_token,
        )

    async def Embed(self, request: llm_pb2.EmbedRequest, context: Context) -> llm_pb2.EmbedResponse:
        api_key = bearer_token(context.invocation_metadata())
        embed = mapping.embed_request(request)
        answer = await self._embed.embed(
            api_key, embed, lambda: remaining(context), request_id_var.get()
        )
        return mapping.embed_response(answer)


def _parse(request: llm_pb2.ChatRequest | llm_pb2.ChatStreamRequest) -> ChatRequest:
    try:
        return mapping.chat_request(request)
    except mapping.UnknownRole as exc:
        raise InvalidArgument.field(str(exc), "role is required") from None
