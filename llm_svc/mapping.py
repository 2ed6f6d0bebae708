"""Protobuf <-> domain for llm_svc (its own API and history's Interaction)."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from gateway_common.errors import InvalidArgument
from gateway_common.protoconv import dict_to_struct, struct_to_dict, timestamp_value, to_timestamp
from llm_svc.domain import (
    Attempt,
    ChatAnswer,
    ChatMessage,
    ChatRequest,
    ChatRole,
    Choice,
    ChoiceDelta,
    ContentPart,
    EmbedAnswer,
    EmbedRequest,
    ImagePart,
    Interaction,
    Outcome,
    ResponseFormat,
    Tool,
    ToolCall,
    ToolChoice,
    Usage,
)
from llmgw.history.v1 import history_pb2
from llmgw.llm.v1 import llm_pb2

_ROLES = {
    llm_pb2.MESSAGE_ROLE_SYSTEM: ChatRole.SYSTEM,
    llm_pb2.MESSAGE_ROLE_USER: ChatRole.USER,
    llm_pb2.MESSAGE_ROLE_ASSISTANT: ChatRole.ASSISTANT,
    llm_pb2.MESSAGE_ROLE_DEVELOPER: ChatRole.DEVELOPER,
    llm_pb2.MESSAGE_ROLE_TOOL: ChatRole.TOOL,
}
_DETAILS = {
    llm_pb2.IMAGE_DETAIL_UNSPECIFIED: "",
    llm_pb2.IMAGE_DETAIL_AUTO: "auto",
    llm_pb2.IMAGE_DETAIL_LOW: "low",
    llm_pb2.IMAGE_DETAIL_HIGH: "high",
}
_TOOL_MODES = {
    llm_pb2.TOOL_CHOICE_MODE_NONE: "none",
    llm_pb2.TOOL_CHOICE_MODE_AUTO: "auto",
    llm_pb2.TOOL_CHOICE_MODE_REQUIRED: "required",
}
_FORMATS = {
    llm_pb2.RESPONSE_FORMAT_TYPE_TEXT: "text",
    llm_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT: "json_object",
    llm_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA: "json_schema",
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


AnyChatRequest = llm_pb2.ChatRequest | llm_pb2.ChatStreamRequest


def chat_request(msg: AnyChatRequest) -> ChatRequest:
    """Raises UnknownRole for a message without a role (the servicer reports the field),
    InvalidArgument for other values that have no meaning."""
    messages = tuple(_message(m, i) for i, m in enumerate(msg.messages))
    return ChatRequest(
        model=msg.model,
        messages=messages,
        temperature=_opt(msg, "temperature"),
        max_tokens=_opt(msg, "max_tokens"),
        top_p=_opt(msg, "top_p"),
        parameters=struct_to_dict(msg.parameters, "parameters")
        if msg.HasField("parameters")
        else {},
        idempotency_key=msg.idempotency_key,
        tools=tuple(_tool(t, i) for i, t in enumerate(msg.tools)),
        tool_choice=_tool_choice(msg),
        parallel_tool_calls=_opt(msg, "parallel_tool_calls"),
        response_format=_format(msg),
        stop=tuple(msg.stop),
        seed=_opt(msg, "seed"),
        n=_opt(msg, "n"),
        presence_penalty=_opt(msg, "presence_penalty"),
        frequency_penalty=_opt(msg, "frequency_penalty"),
        logit_bias=dict(msg.logit_bias),
        logprobs=_opt(msg, "logprobs"),
        top_logprobs=_opt(msg, "top_logprobs"),
        max_completion_tokens=_opt(msg, "max_completion_tokens"),
        reasoning_effort=msg.reasoning_effort,
        user=msg.user,
    )


def _opt(msg: Any, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


def _message(m: llm_pb2.Message, index: int) -> ChatMessage:
    role = _ROLES.get(m.role)
    if role is None:
        raise UnknownRole(index)
    parts: list[ContentPart] = []
    for j, part in enumerate(m.parts):
        kind = part.WhichOneof("part")
        if kind == "text":
            parts.append(part.text)
        elif kind == "image_url":
            detail = _DETAILS.get(part.image_url.detail)
            if detail is None:
                raise InvalidArgument.field(f"messages[{index}].parts[{j}].detail", "unknown")
            parts.append(ImagePart(part.image_url.url, detail))
        else:
            raise InvalidArgument.field(f"messages[{index}].parts[{j}]", "text or image_url")
    return ChatMessage(
        role=role,
        content=m.content,
        parts=tuple(parts),
        name=m.name,
        tool_calls=tuple(ToolCall(c.id, c.name, c.arguments) for c in m.tool_calls),
        tool_call_id=m.tool_call_id,
        refusal=m.refusal,
    )


def _tool(t: llm_pb2.Tool, index: int) -> Tool:
    params = t.parameters
    return Tool(
        name=t.name,
        description=t.description,
        parameters=struct_to_dict(params, f"tools[{index}].parameters")
        if t.HasField("parameters")
        else None,
        strict=t.strict if t.HasField("strict") else None,
    )


def _tool_choice(msg: AnyChatRequest) -> ToolChoice | None:
    """None when not set (UNSPECIFIED means the provider's default)."""
    c = msg.tool_choice
    if c.WhichOneof("choice") == "function_name":
        return ToolChoice(function=c.function_name)
    if c.mode == llm_pb2.TOOL_CHOICE_MODE_UNSPECIFIED:
        return None
    mode = _TOOL_MODES.get(c.mode)
    if mode is None:
        raise InvalidArgument.field("tool_choice.mode", "none, auto or required")
    return ToolChoice(mode=mode)


def _format(msg: AnyChatRequest) -> ResponseFormat | None:
    """None when not set (UNSPECIFIED means text, the provider's default)."""
    f = msg.response_format
    if f.type == llm_pb2.RESPONSE_FORMAT_TYPE_UNSPECIFIED and not f.HasField("json_schema"):
        return None
    kind = _FORMATS.get(f.type)
    if kind is None:
        raise InvalidArgument.field("response_format.type", "text, json_object or json_schema")
    js = f.json_schema
    return ResponseFormat(
        type=kind,
        name=js.name,
        description=js.description,
        schema=struct_to_dict(js.schema, "response_format.json_schema.schema")
        if js.HasField("schema")
        else None,
        strict=js.strict if js.HasField("strict") else None,
    )


def _usage(u: Usage) -> llm_pb2.Usage:
    return llm_pb2.Usage(
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        total_tokens=u.total_tokens,
        cached_tokens=u.cached_tokens,
        reasoning_tokens=u.reasoning_tokens,
    )


def _tool_calls(calls: tuple[ToolCall, ...]) -> list[llm_pb2.ToolCall]:
    return [llm_pb2.ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in calls]


def _choice(c: Choice) -> llm_pb2.Choice:
    out = llm_pb2.Choice(
        index=c.index,
        content=c.content,
        refusal=c.refusal,
        tool_calls=_tool_calls(c.tool_calls),
        finish_reason=c.finish_reason,
    )
    if c.logprobs is not None:
        out.logprobs.update(c.logprobs)
    return out


def chat_response(answer: ChatAnswer) -> llm_pb2.ChatResponse:
    choices = answer.choices or (Choice(0, answer.content, finish_reason=answer.finish_reason),)
    return llm_pb2.ChatResponse(
        interaction_id=answer.interaction_id,
        model=answer.model,
        content=answer.content,
        finish_reason=answer.finish_reason,
        usage=_usage(answer.usage),
        latency_ms=answer.latency_ms,
        choices=[_choice(c) for c in choices],
    )


def stream_event(event: ChoiceDelta | ChatAnswer) -> llm_pb2.ChatStreamResponse:
    """Plain text of the first choice as ``delta`` (what clients of the first contract
    read); tool calls, refusals and other choices as ``choice_delta``."""
    if isinstance(event, ChatAnswer):
        return llm_pb2.ChatStreamResponse(done=chat_response(event))
    if event.is_plain_text:
        return llm_pb2.ChatStreamResponse(delta=event.content)
    return llm_pb2.ChatStreamResponse(
        choice_delta=llm_pb2.ChoiceDelta(
            index=event.index,
            content=event.content,
            refusal=event.refusal,
            tool_calls=[
                llm_pb2.ToolCallDelta(index=t.index, id=t.id, name=t.name, arguments=t.arguments)
                for t in event.tool_calls
            ],
        )
    )


def embed_request(msg: llm_pb2.EmbedRequest) -> EmbedRequest:
    return EmbedRequest(
        model=msg.model,
        inputs=tuple(msg.inputs),
        dimensions=msg.dimensions if msg.HasField("dimensions") else None,
        user=msg.user,
        idempotency_key=msg.idempotency_key,
    )


def embed_response(answer: EmbedAnswer) -> llm_pb2.EmbedResponse:
    return llm_pb2.EmbedResponse(
        interaction_id=answer.interaction_id,
        model=answer.model,
        embeddings=[llm_pb2.Embedding(index=i, values=v) for i, v in enumerate(answer.vectors)],
        usage=_usage(answer.usage),
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
            deployment_id=i.deployment_id,
            attempts=[_attempt(a) for a in i.attempts],
            answered_model=i.answered_model,
            cost_nanos=i.cost_nanos,
        ),
        status=_OUTCOMES[i.outcome],
        error_reason=i.error_reason,
        request_id=i.request_id,
        finish_reason=i.finish_reason,
        answer_truncated=i.truncated,
    )


def _attempt(a: Attempt) -> history_pb2.ProviderAttempt:
    return history_pb2.ProviderAttempt(
        deployment_id=a.deployment_id,
        model=a.model,
        status=a.status,
        http_status=a.http_status,
        latency_ms=a.latency_ms,
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
        cost_nanos=md.cost_nanos,
    )
