"""Protobuf <-> domain for llm_svc (its own API and history's Interaction)."""

from __future__ import annotations

from google.protobuf import json_format

from gateway_common.protoconv import dict_to_struct, timestamp_value, to_timestamp
from llm_svc.domain import (
    ChatAnswer,
    ChatMessage,
    ChatRequest,
    ChatRole,
    Interaction,
    Outcome,
    Usage,
)
from llmgw.history.v1 import history_pb2
from llmgw.llm.v1 import llm_pb2

_ROLES = {
    llm_pb2.MESSAGE_ROLE_SYSTEM: ChatRole.SYSTEM,
    llm_pb2.MESSAGE_ROLE_USER: ChatRole.USER,
    llm_pb2.MESSAGE_ROLE_ASSISTANT: ChatRole.ASSISTANT,
}
_OUTCOMES = {
    Outcome.OK: history_pb2.INTERACTION_STATUS_OK,
    Outcome.ERROR: history_pb2.INTERACTION_STATUS_ERROR,
    Outcome.CANCELLED: history_pb2.INTERACTION_STATUS_CANCELLED,
}
_STATUSES = {v: k for k, v in _OUTCOMES.items()}


class UnknownRole(ValueError):
    def __init__(self, index: int) -> None:
        super().__init__(f"messages[{index}].role")
        self.index = index


def chat_request(msg: llm_pb2.ChatRequest | llm_pb2.ChatStreamRequest) -> ChatRequest:
    """Raises UnknownRole for a message without a role (the servicer reports the field)."""
    messages = []
    for i, m in enumerate(msg.messages):
        role = _ROLES.get(m.role)
        if role is None:
            raise UnknownRole(i)
        messages.append(ChatMessage(role, m.content))
    return ChatRequest(
        model=msg.model,
        messages=tuple(messages),
        temperature=msg.temperature if msg.HasField("temperature") else None,
        max_tokens=msg.max_tokens if msg.HasField("max_tokens") else None,
        top_p=msg.top_p if msg.HasField("top_p") else None,
        parameters=json_format.MessageToDict(msg.parameters) if msg.HasField("parameters") else {},
        idempotency_key=msg.idempotency_key,
    )


def chat_response(answer: ChatAnswer) -> llm_pb2.ChatResponse:
    u = answer.usage
    return llm_pb2.ChatResponse(
        interaction_id=answer.interaction_id,
        model=answer.model,
        content=answer.content,
        finish_reason=answer.finish_reason,
        usage=llm_pb2.Usage(
            prompt_tokens=u.prompt_tokens,
            completion_tokens=u.completion_tokens,
            total_tokens=u.total_tokens,
        ),
        latency_ms=answer.latency_ms,
    )


def interaction_to_proto(i: Interaction) -> history_pb2.Interaction:
    return history_pb2.Interaction(
        interaction_id=i.interaction_id,
        tenant_id=i.tenant_id,
        user_id=i.user_id,
        subscription_id=i.subscription_id,
        model_id=i.model_id,
        model_name=i.model_name,
        timestamp=to_timestamp(i.timestamp),
        question=i.question,
        answer=i.answer,
        metadata=history_pb2.InteractionMetadata(
            tokens_used=i.usage.total_tokens,
            response_time_ms=i.latency_ms,
            prompt_parameters=dict_to_struct(i.parameters),
            prompt_tokens=i.usage.prompt_tokens,
            completion_tokens=i.usage.completion_tokens,
        ),
        status=_OUTCOMES[i.outcome],
        error_reason=i.error_reason,
        request_id=i.request_id,
        finish_reason=i.finish_reason,
        answer_truncated=i.truncated,
    )


def interaction_from_proto(p: history_pb2.Interaction) -> Interaction:
    md = p.metadata
    return Interaction(
        interaction_id=p.interaction_id,
        tenant_id=p.tenant_id,
        user_id=p.user_id,
        subscription_id=p.subscription_id,
        model_id=p.model_id,
        model_name=p.model_name,
        timestamp=timestamp_value(p.timestamp, "interaction.timestamp"),
        question=p.question,
        answer=p.answer,
        usage=Usage(md.prompt_tokens, md.completion_tokens),
        latency_ms=md.response_time_ms,
        parameters=json_format.MessageToDict(md.prompt_parameters),
        outcome=_STATUSES.get(p.status, Outcome.OK),
        request_id=p.request_id,
        error_reason=p.error_reason,
        finish_reason=p.finish_reason,
        truncated=p.answer_truncated,
    )
