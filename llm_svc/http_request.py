"""OpenAI's JSON request bodies -> the domain requests the gRPC servicer builds, so both
doors share every check: the typed chat fields are parsed by the chat schema's own
parsers (``request_checks.PARSERS``, the ones ``parameters`` goes through), the rest of
the body becomes ``parameters`` and meets the same rules (ignored, passed on, allowed as
an extra, or refused as outside the schema). Standard library only."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from gateway_common.errors import InvalidArgument
from llm_svc import request_checks as checks
from llm_svc.domain import (
    ChatMessage,
    ChatRequest,
    ChatRole,
    ContentPart,
    EmbedRequest,
    ImagePart,
    ToolCall,
)

_ROLES = {r.value: r for r in ChatRole}
# The body's own keys (not chat parameters): the door reads them itself.
_STREAM_KEYS = ("stream", "stream_options")


@dataclasses.dataclass(frozen=True)
class ChatCall:
    request: ChatRequest
    stream: bool
    include_usage: bool  # stream_options.include_usage: a last chunk with the usage


def chat_call(body: Any, idempotency_key: str = "") -> ChatCall:
    """Raises InvalidArgument naming the field (OpenAI's JSON path)."""
    if not isinstance(body, dict):
        raise InvalidArgument.field("body", "must be a JSON object")
    body = dict(body)
    stream = body.pop("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise InvalidArgument.field("stream", "must be true or false")
    options = body.pop("stream_options", None) or {}
    if not isinstance(options, dict):
        raise InvalidArgument.field("stream_options", "must be an object")
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise InvalidArgument.field("stream_options.include_usage", "must be true or false")
    model = _model(body.pop("model", None))
    messages = body.pop("messages", None)
    if not isinstance(messages, list):
        raise InvalidArgument.field("messages", "must be a list of messages")
    fields: dict[str, Any] = {}
    parameters: dict[str, Any] = {}
    for key, value in body.items():
        if key in checks.PARSERS and value is not None:
            attr, parse = checks.PARSERS[key]
            fields[attr] = parse(value, key)
        elif value is not None:
            parameters[key] = value  # the chat schema decides (chat_schema.merge_parameters)
    request = ChatRequest(
        model=model,
        messages=tuple(_message(m, f"messages[{i}]") for i, m in enumerate(messages)),
        parameters=parameters,
        idempotency_key=idempotency_key,
        **fields,
    )
    return ChatCall(request, bool(stream), include_usage)


def embed_request(body: Any, idempotency_key: str = "") -> EmbedRequest:
    if not isinstance(body, dict):
        raise InvalidArgument.field("body", "must be a JSON object")
    unknown = sorted(set(body) - {"model", "input", "dimensions", "encoding_format", "user"})
    if unknown:
        raise InvalidArgument.field(unknown[0], "not an embeddings parameter")
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise InvalidArgument.field("input", "a string or a list of strings")
    dimensions = body.get("dimensions")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise InvalidArgument.field("encoding_format", "float or base64")
    return EmbedRequest(
        model=_model(body.get("model")),
        inputs=tuple(inputs),
        dimensions=None if dimensions is None else _int(dimensions, "dimensions"),
        user=_text(body.get("user") or "", "user"),
        idempotency_key=idempotency_key,
        base64=fmt == "base64",
    )


def _model(value: Any) -> str:
    model = _text(value if value is not None else "", "model")
    if "\x00" in model:
        raise InvalidArgument.field("model", "must not contain NUL (U+0000) characters")
    return model


def _int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument.field(path, "must be an integer")
    return value


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgument.field(path, "must be a string")
    return value


def _message(m: Any, path: str) -> ChatMessage:
    if not isinstance(m, dict):
        raise InvalidArgument.field(path, "must be an object")
    role = _ROLES.get(m.get("role"))  # type: ignore[arg-type]
    if role is None:
        raise InvalidArgument.field(f"{path}.role", "system, developer, user, assistant or tool")
    content = m.get("content")
    text, parts = "", cast(tuple[ContentPart, ...], ())
    if isinstance(content, list):
        parts = tuple(_part(p, f"{path}.content[{j}]") for j, p in enumerate(content))
    elif content is not None:
        text = _text(content, f"{path}.content")
    calls = m.get("tool_calls") or []
    if not isinstance(calls, list):
        raise InvalidArgument.field(f"{path}.tool_calls", "must be a list")
    return ChatMessage(
        role=role,
        content=text,
        parts=parts,
        name=_text(m.get("name") or "", f"{path}.name"),
        tool_calls=tuple(_call(c, f"{path}.tool_calls[{j}]") for j, c in enumerate(calls)),
        tool_call_id=_text(m.get("tool_call_id") or "", f"{path}.tool_call_id"),
        refusal=_text(m.get("refusal") or "", f"{path}.refusal"),
    )


def _part(p: Any, path: str) -> ContentPart:
    if not isinstance(p, dict):
        raise InvalidArgument.field(path, "must be an object")
    kind = p.get("type")
    if kind == "text":
        return _text(p.get("text"), f"{path}.text")
    if kind == "image_url":
        image = p.get("image_url")
        if not isinstance(image, dict):
            raise InvalidArgument.field(f"{path}.image_url", "must be an object")
        detail = _text(image.get("detail") or "", f"{path}.image_url.detail")
        return ImagePart(_text(image.get("url"), f"{path}.image_url.url"), detail)
    raise InvalidArgument.field(f"{path}.type", "text or image_url")


def _call(c: Any, path: str) -> ToolCall:
    if not isinstance(c, dict):
        raise InvalidArgument.field(path, "must be an object")
    if c.get("type", "function") != "function":
        raise InvalidArgument.field(f"{path}.type", "only function tool calls are supported")
    fn = c.get("function")
    if not isinstance(fn, dict):
        raise InvalidArgument.field(f"{path}.function", "must be an object")
    return ToolCall(
        _text(c.get("id") or "", f"{path}.id"),
        _text(fn.get("name") or "", f"{path}.function.name"),
        _text(fn.get("arguments") or "", f"{path}.function.arguments"),
    )
