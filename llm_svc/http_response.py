"""The domain answers in OpenAI's JSON: a chat completion, its stream's chunks (the same
``chat.completion.chunk`` objects OpenAI sends), the models list and embeddings.
Standard library only."""

from __future__ import annotations

import base64
import struct
import time
from typing import Any

from llm_svc.domain import ChatAnswer, Choice, ChoiceDelta, EmbedAnswer, ToolCall, Usage


def completion_id(interaction_id: str) -> str:
    """OpenAI's ``chatcmpl-`` id, carrying the interaction id history records."""
    return f"chatcmpl-{interaction_id}"


def usage(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def _calls(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]


def _choice(c: Choice) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": c.content if c.content or not c.tool_calls else None,
        "refusal": c.refusal or None,
    }
    if c.tool_calls:
        message["tool_calls"] = _calls(c.tool_calls)
    return {
        "index": c.index,
        "message": message,
        "logprobs": c.logprobs,
        "finish_reason": c.finish_reason or "stop",
    }


def choices_of(answer: ChatAnswer) -> tuple[Choice, ...]:
    return answer.choices or (Choice(0, answer.content, finish_reason=answer.finish_reason),)


def chat_completion(answer: ChatAnswer, created: int | None = None) -> dict[str, Any]:
    return {
        "id": completion_id(answer.interaction_id),
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": answer.model,
        "choices": [_choice(c) for c in choices_of(answer)],
        "usage": usage(answer.usage),
        "system_fingerprint": None,
    }


class ChunkWriter:
    """The chunks of one streamed completion (same id, created and model throughout)."""

    def __init__(self, interaction_id: str, model: str) -> None:
        self._base = {
            "id": completion_id(interaction_id),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": None,
        }
        self._opened: set[int] = set()

    def delta(self, d: ChoiceDelta) -> dict[str, Any]:
        delta: dict[str, Any] = {}
        if d.index not in self._opened:  # a choice's first chunk names the role
            self._opened.add(d.index)
            delta["role"] = "assistant"
        if d.content:
            delta["content"] = d.content
        if d.refusal:
            delta["refusal"] = d.refusal
        if d.tool_calls:
            delta["tool_calls"] = [
                _call_delta(t.index, t.id, t.name, t.arguments) for t in d.tool_calls
            ]
        return self._chunk([{"index": d.index, "delta": delta, "finish_reason": None}])

    def finish(self, answer: ChatAnswer) -> list[dict[str, Any]]:
        """One closing chunk per choice (its finish reason), once settlement is durable."""
        out = []
        for c in choices_of(answer):
            delta: dict[str, Any] = {}
            if c.index not in self._opened:
                self._opened.add(c.index)
                delta["role"] = "assistant"
                delta["content"] = c.content  # a replay: the stored answer whole
            out.append(
                self._chunk(
                    [
                        {
                            "index": c.index,
                            "delta": delta,
                            "logprobs": c.logprobs,
                            "finish_reason": c.finish_reason or "stop",
                        }
                    ]
                )
            )
        return out

    def usage(self, u: Usage) -> dict[str, Any]:
        return self._chunk([], usage(u))

    def _chunk(self, choices: list[dict[str, Any]], u: Any = None) -> dict[str, Any]:
        return {**self._base, "choices": choices, "usage": u}


def _call_delta(index: int, cid: str, name: str, arguments: str) -> dict[str, Any]:
    out: dict[str, Any] = {"index": index}
    if cid:
        out["id"] = cid
        out["type"] = "function"
    fn: dict[str, str] = {}
    if name:
        fn["name"] = name
    if arguments or not name:
        fn["arguments"] = arguments
    out["function"] = fn
    return out


def model(m: dict[str, Any]) -> dict[str, Any]:
    """A model the key may use, as OpenAI lists it (``owned_by``: its provider)."""
    return {"id": m["name"], "object": "model", "created": 0, "owned_by": m["provider"] or "llmgw"}


def models(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": [model(m) for m in items]}


def embeddings(answer: EmbedAnswer, as_base64: bool = False) -> dict[str, Any]:
    data = [
        {"object": "embedding", "index": i, "embedding": _b64(v) if as_base64 else list(v)}
        for i, v in enumerate(answer.vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": answer.model,
        "usage": {
            "prompt_tokens": answer.usage.prompt_tokens,
            "total_tokens": answer.usage.total_tokens,
        },
    }


def _b64(vector: tuple[float, ...]) -> str:
    """OpenAI's base64 encoding: little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
