"""What history records of one chat: built in one place from the domain request, the
parameters sent and the answer. Standard library only.

- question: the last user message's text; answer: the first choice's text;
- metadata ``prompt_parameters``: the parameters sent to the provider (tools and
  response_format included), plus the gateway's own keys: ``images`` (references:
  the URL, or the sha256 and size of a data URL's bytes, never the bytes),
  ``tool_results`` (the request's tool messages), ``tool_calls`` (the first choice's),
  ``choices`` (every choice, when there are several), ``usage_details``;
- keys the store cannot hold (a leading ``$``, a ``.``, a ``%``) are percent-encoded at
  every depth (``%24``, ``%2E``, ``%25``), so a JSON schema's ``$ref`` is kept, readable.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

from llm_svc.domain import (
    ChatAnswer,
    ChatRequest,
    ChatRole,
    Choice,
    Completion,
    Interaction,
    ToolCall,
)

# The gateway's own keys in prompt_parameters (no chat parameter has these names).
OWN_KEYS = ("images", "tool_results", "tool_calls", "choices", "usage_details")


@dataclass(frozen=True)
class RecordContent:
    """The Interaction fields that depend on what was asked and answered."""

    question: str
    answer: str
    finish_reason: str
    prompt_parameters: dict[str, Any]


def record_content(
    request: ChatRequest, sent: dict[str, Any], completion: Completion
) -> RecordContent:
    params: dict[str, Any] = dict(sent)
    images = image_references(request)
    if images:
        params["images"] = images
    results = [
        {"tool_call_id": m.tool_call_id, "content": m.text}
        for m in request.messages
        if m.role is ChatRole.TOOL
    ]
    if results:
        params["tool_results"] = results
    choices = completion.all_choices()
    if choices[0].tool_calls:
        params["tool_calls"] = [_call(c) for c in choices[0].tool_calls]
    if len(choices) > 1 or choices[0].refusal:
        params["choices"] = [_choice(c) for c in choices]
    u = completion.usage
    if u.cached_tokens or u.reasoning_tokens:
        params["usage_details"] = {
            "cached_tokens": u.cached_tokens,
            "reasoning_tokens": u.reasoning_tokens,
        }
    return RecordContent(
        question=request.question,
        answer=completion.content,
        finish_reason=completion.finish_reason,
        prompt_parameters=store_safe(params),
    )


def image_references(request: ChatRequest) -> list[dict[str, Any]]:
    refs = []
    for i, message in enumerate(request.messages):
        for j, part in enumerate(p for p in message.parts):
            if isinstance(part, str):
                continue
            ref: dict[str, Any] = {"message": i, "part": j}
            if part.url.startswith("data:"):
                ref.update(_data_url_digest(part.url))
            else:
                ref["url"] = part.url
            if part.detail:
                ref["detail"] = part.detail
            refs.append(ref)
    return refs


def _data_url_digest(url: str) -> dict[str, Any]:
    header, _, data = url.partition(",")
    media_type = header.removeprefix("data:").split(";")[0]
    try:
        raw = base64.b64decode(data, validate=True) if ";base64" in header else data.encode()
    except (binascii.Error, ValueError):
        raw = data.encode()
    return {"media_type": media_type, "sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}


def _call(c: ToolCall) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "arguments": c.arguments}


def _choice(c: Choice) -> dict[str, Any]:
    out: dict[str, Any] = {"index": c.index, "content": c.content, "finish_reason": c.finish_reason}
    if c.refusal:
        out["refusal"] = c.refusal
    if c.tool_calls:
        out["tool_calls"] = [_call(t) for t in c.tool_calls]
    return out


def store_safe(value: Any) -> Any:
    """Keys percent-encoded where MongoDB (and FerretDB) cannot store them."""
    if isinstance(value, dict):
        return {_key(k): store_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [store_safe(v) for v in value]
    return value


def _key(key: str) -> str:
    if "%" in key or "." in key or key.startswith("$"):
        return key.replace("%", "%25").replace(".", "%2E").replace("$", "%24")
    return key


def choices_of(interaction: Interaction) -> tuple[Choice, ...]:
    """The choices a stored interaction answered (for the replay of a keyed retry)."""
    params = interaction.parameters
    stored = params.get("choices")
    if isinstance(stored, list) and stored:
        return tuple(_choice_from(c) for c in stored if isinstance(c, dict))
    calls = _calls_from(params.get("tool_calls"))
    finish = interaction.finish_reason or ("tool_calls" if calls else "")
    return (Choice(0, interaction.answer, tool_calls=calls, finish_reason=finish),)


def _calls_from(value: Any) -> tuple[ToolCall, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        ToolCall(str(c.get("id", "")), str(c.get("name", "")), str(c.get("arguments", "")))
        for c in value
        if isinstance(c, dict)
    )


def _choice_from(c: dict[str, Any]) -> Choice:
    return Choice(
        index=int(c.get("index", 0)),
        content=str(c.get("content", "")),
        refusal=str(c.get("refusal", "")),
        tool_calls=_calls_from(c.get("tool_calls")),
        finish_reason=str(c.get("finish_reason", "")),
    )


def answer_of(interaction: Interaction) -> ChatAnswer:
    """The answer a stored interaction gives back (a keyed retry's replay)."""
    choices = choices_of(interaction)
    details = interaction.parameters.get("usage_details")
    usage = interaction.usage
    if isinstance(details, dict):
        usage = dataclasses.replace(
            usage,
            cached_tokens=int(details.get("cached_tokens", 0)),
            reasoning_tokens=int(details.get("reasoning_tokens", 0)),
        )
    return ChatAnswer(
        interaction_id=interaction.interaction_id,
        model=interaction.model_name,
        content=interaction.answer,
        finish_reason=interaction.finish_reason or choices[0].finish_reason or "stop",
        usage=usage,
        latency_ms=interaction.latency_ms,
        choices=choices,
    )
