"""The fake provider's answers: deterministic functions of the request body.

- text: ``"Echo: " + <last user message's text>`` (with `` [images: k]`` when it had
  k images), cut at the first ``stop`` sequence, cut to ``max_tokens`` /
  ``max_completion_tokens`` words (finish_reason "length"); choice i > 0 appends `` #i+1``;
- tools offered and the last user message names some of them (or ``tool_choice`` is
  "required" or names one): one tool call per named tool, in the tools' order (only the
  first with ``parallel_tool_calls: false``); arguments fill the schema's required fields;
  ids derive from the question, so a streamed call and a unary call agree;
- after tool results (the last message is a tool message): ``"Tool results: " + <their
  contents joined by "; ">``;
- ``response_format`` json_object: ``{"answer": <text>}``; json_schema: an object with the
  schema's required fields filled (strings get the text);
- ``[[refuse]]`` in the question: a refusal; ``[[filter]]``: finish_reason content_filter;
- usage: words of every message (+85 per image) as prompt tokens, the earlier messages'
  words as cached tokens, the answer's words (tool calls: their arguments' words) as
  completion tokens, plus reasoning tokens by ``reasoning_effort`` (1, 2, 4, 8, 16).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

MARKER = re.compile(r"\[\[(fail|delay|slowstream):(\d+)\]\]|\[\[(refuse|filter)\]\]")
IMAGE_TOKENS = 85
REASONING = {"none": 0, "minimal": 1, "low": 2, "medium": 4, "high": 8, "xhigh": 16}


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def images_in(content: Any) -> int:
    if not isinstance(content, list):
        return 0
    return sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")


def last_user(messages: list[dict[str, Any]]) -> dict[str, Any]:
    for message in reversed(messages):
        if message.get("role") == "user":
            return dict(message)
    raise KeyError("no user message")


def markers(question: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for name, value, flag in MARKER.findall(question):
        if name:
            found[name] = int(value)
        if flag:
            found[flag] = 1
    return found


def answer(body: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The choices (as a unary response has them) and the usage."""
    messages = body["messages"]
    user = last_user(messages)
    question = MARKER.sub("", text_of(user.get("content"))).strip()
    flags = markers(text_of(user.get("content")))
    images = images_in(user.get("content"))
    n = int(body.get("n") or 1)
    choices = [_choice(body, messages, question, images, flags, i) for i in range(n)]
    prompt = sum(len(text_of(m.get("content")).split()) for m in messages)
    prompt += IMAGE_TOKENS * sum(images_in(m.get("content")) for m in messages)
    cached = sum(len(text_of(m.get("content")).split()) for m in messages[:-1])
    reasoning = REASONING.get(str(body.get("reasoning_effort", "")), 0)
    completion = sum(_words(c) for c in choices) + reasoning * n
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning * n, "audio_tokens": 0},
    }
    return choices, usage


def _words(choice: dict[str, Any]) -> int:
    message = choice["message"]
    calls = message.get("tool_calls") or []
    if calls:
        return sum(len(c["function"]["arguments"].split()) for c in calls)
    return len((message.get("content") or message.get("refusal") or "").split())


def _choice(
    body: dict[str, Any],
    messages: list[dict[str, Any]],
    question: str,
    images: int,
    flags: dict[str, int],
    index: int,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None}
    finish = "stop"
    calls = [] if messages[-1].get("role") == "tool" else tool_calls(body, question)
    if "refuse" in flags:
        message["refusal"] = "I can't help with that."
    elif calls:
        message["tool_calls"], finish = calls, "tool_calls"
    else:
        content, finish = _content(body, messages, question, images, index)
        message["content"] = content
        if "filter" in flags:
            finish = "content_filter"
    choice: dict[str, Any] = {"index": index, "message": message, "finish_reason": finish}
    if body.get("logprobs"):
        words = (message.get("content") or "").split()
        choice["logprobs"] = {
            "content": [
                {"token": w, "logprob": -0.5, "bytes": list(w.encode()), "top_logprobs": []}
                for w in words
            ],
            "refusal": None,
        }
    return choice


def _content(
    body: dict[str, Any],
    messages: list[dict[str, Any]],
    question: str,
    images: int,
    index: int,
) -> tuple[str, str]:
    if messages[-1].get("role") == "tool":
        results: list[str] = []
        for m in reversed(messages):
            if m.get("role") != "tool":
                break
            results.insert(0, text_of(m.get("content")))
        text = "Tool results: " + "; ".join(results)
    else:
        text = "Echo: " + question + (f" [images: {images}]" if images else "")
    if index:
        text += f" #{index + 1}"
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_object":
        return json.dumps({"answer": text}), "stop"
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        return json.dumps(value_for(schema, text)), "stop"
    stops = body.get("stop") or []
    for stop in [stops] if isinstance(stops, str) else stops:
        if stop and stop in text:
            text = text[: text.index(stop)]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    words = text.split(" ")
    if isinstance(limit, int) and 0 < limit < len(words):
        return " ".join(words[:limit]), "length"
    return text, "stop"


def tool_calls(body: dict[str, Any], question: str) -> list[dict[str, Any]]:
    tools = [t.get("function") or {} for t in body.get("tools") or []]
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return []
    if isinstance(choice, dict):
        wanted = [(choice.get("function") or {}).get("name")]
        chosen = [t for t in tools if t.get("name") in wanted]
    else:
        chosen = [t for t in tools if t.get("name") and t["name"] in question]
        if not chosen and choice == "required":
            chosen = tools[:1]
    if body.get("parallel_tool_calls") is False:
        chosen = chosen[:1]
    return [
        {
            "id": "call_" + hashlib.sha256(f"{t['name']}|{k}|{question}".encode()).hexdigest()[:24],
            "type": "function",
            "function": {
                "name": t["name"],
                "arguments": json.dumps(value_for(t.get("parameters") or {}, question)),
            },
        }
        for k, t in enumerate(chosen)
    ]


def value_for(schema: Any, text: str, depth: int = 0) -> Any:
    """A value matching a JSON schema's type, with every required field filled."""
    if not isinstance(schema, dict) or depth > 16:
        return text
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return value_for(schema[key][0], text, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        required = schema.get("required") or []
        return {name: value_for(props.get(name, {}), text, depth + 1) for name in required}
    if kind == "array":
        items = schema.get("items")
        return [value_for(items, text, depth + 1)] if items else []
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(kind, text)


def stream_pieces(choice: dict[str, Any]) -> list[dict[str, Any]]:
    """The deltas of one choice: text word by word, tool calls as an opening piece (id,
    name) then argument fragments of 8 characters."""
    message = choice["message"]
    pieces: list[dict[str, Any]] = []
    for i, word in enumerate((message.get("content") or "").split(" ")):
        if message.get("content"):
            pieces.append({"content": word if i == 0 else " " + word})
    if message.get("refusal"):
        pieces.append({"refusal": message["refusal"]})
    for k, call in enumerate(message.get("tool_calls") or []):
        fn = call["function"]
        opening = {"index": k, "id": call["id"], "type": "function"}
        opening["function"] = {"name": fn["name"], "arguments": ""}
        pieces.append({"tool_calls": [opening]})
        args = fn["arguments"]
        for start in range(0, len(args), 8):
            fragment = {"index": k, "function": {"arguments": args[start : start + 8]}}
            pieces.append({"tool_calls": [fragment]})
    return pieces


EMBED_DIMENSIONS = 8


def vector(text: str, size: int = EMBED_DIMENSIONS) -> list[float]:
    """The fake embedding of ``text``: ``size`` numbers in -1..1 from its SHA-256 (the
    same text, the same vector), each exact in float32."""
    out: list[float] = []
    counter = 0
    while len(out) < size:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out += [(b - 128) / 128 for b in digest]
        counter += 1
    return out[:size]
