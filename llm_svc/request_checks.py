"""The typed chat fields: parsed from OpenAI's JSON names (a request's ``parameters``),
checked, and written back as the provider's JSON. Standard library only."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from gateway_common.errors import InvalidArgument
from llm_svc.domain import (
    MAX_CHOICES,
    MAX_STOP,
    ChatMessage,
    ChatRequest,
    ChatRole,
    ImagePart,
    ResponseFormat,
    Tool,
    ToolChoice,
)

MAX_DEPTH = 16  # of parameters
MAX_TOOLS = 128
MAX_TOOLS_BYTES = 64 * 1024
MAX_SCHEMA_BYTES = 32 * 1024
MAX_SCHEMA_DEPTH = 32
MAX_STOP_CHARS = 256
MAX_LOGIT_BIAS = 300
MAX_USER_CHARS = 256
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
REASONING_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})
TOOL_MODES = frozenset({"none", "auto", "required"})
FORMATS = frozenset({"text", "json_object", "json_schema"})


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), allow_nan=True).encode())


def json_problem(value: Any, limit: int = MAX_DEPTH, depth: int = 0) -> str:
    """Why a JSON value cannot be sent and stored, or "" (NaN and infinities, NUL
    characters, nesting deeper than MAX_DEPTH)."""
    if depth > limit:
        return f"nested deeper than {limit} levels"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN and infinite numbers are not JSON"
    if isinstance(value, str) and "\x00" in value:
        return "NUL characters are not allowed"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = "NUL characters are not allowed" if "\x00" in key else ""
            problem = problem or json_problem(item, limit, depth + 1)
            if problem:
                return problem
    if isinstance(value, list):
        for item in value:
            problem = json_problem(item, limit, depth + 1)
            if problem:
                return problem
    return ""


def _bad(path: str, why: str) -> InvalidArgument:
    return InvalidArgument.field(path, why)


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(path, "must be a number")
    return float(value)


def _int(value: Any, path: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(path, "must be an integer")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(path, "must be true or false")
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _bad(path, "must be a string")
    return value


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(path, "must be an object")
    return value


def _stop(value: Any, path: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise _bad(path, "must be a string or a list of strings")
    return tuple(_str(s, path) for s in items)


def _logit_bias(value: Any, path: str) -> dict[str, int]:
    return {str(k): _int(v, path) for k, v in _obj(value, path).items()}


def _tools(value: Any, path: str) -> tuple[Tool, ...]:
    if not isinstance(value, list):
        raise _bad(path, "must be a list of tools")
    tools = []
    for i, item in enumerate(value):
        entry = _obj(item, f"{path}[{i}]")
        if entry.get("type", "function") != "function":
            raise _bad(f"{path}[{i}].type", "only function tools are supported")
        fn = _obj(entry.get("function"), f"{path}[{i}].function")
        params = fn.get("parameters")
        strict = fn.get("strict")
        tools.append(
            Tool(
                name=_str(fn.get("name", ""), f"{path}[{i}].function.name"),
                description=_str(fn.get("description", ""), f"{path}[{i}].function.description"),
                parameters=None if params is None else _obj(params, f"{path}[{i}].parameters"),
                strict=None if strict is None else _bool(strict, f"{path}[{i}].strict"),
            )
        )
    return tuple(tools)


def _tool_choice(value: Any, path: str) -> ToolChoice:
    if isinstance(value, str):
        return ToolChoice(mode=value)
    fn = _obj(_obj(value, path).get("function"), f"{path}.function")
    return ToolChoice(function=_str(fn.get("name", ""), f"{path}.function.name"))


def _response_format(value: Any, path: str) -> ResponseFormat:
    entry = _obj(value, path)
    kind = _str(entry.get("type", ""), f"{path}.type")
    if kind != "json_schema":
        return ResponseFormat(type=kind)
    js = _obj(entry.get("json_schema"), f"{path}.json_schema")
    strict = js.get("strict")
    schema = js.get("schema")
    return ResponseFormat(
        type=kind,
        name=_str(js.get("name", ""), f"{path}.json_schema.name"),
        description=_str(js.get("description", ""), f"{path}.json_schema.description"),
        schema=None if schema is None else _obj(schema, f"{path}.json_schema.schema"),
        strict=None if strict is None else _bool(strict, f"{path}.json_schema.strict"),
    )


Parser = Callable[[Any, str], Any]
# Chat schema name -> (ChatRequest attribute, parser of its JSON form).
PARSERS: dict[str, tuple[str, Parser]] = {
    "temperature": ("temperature", _number),
    "top_p": ("top_p", _number),
    "max_tokens": ("max_tokens", _int),
    "max_completion_tokens": ("max_completion_tokens", _int),
    "tools": ("tools", _tools),
    "tool_choice": ("tool_choice", _tool_choice),
    "parallel_tool_calls": ("parallel_tool_calls", _bool),
    "response_format": ("response_format", _response_format),
    "stop": ("stop", _stop),
    "seed": ("seed", _int),
    "n": ("n", _int),
    "presence_penalty": ("presence_penalty", _number),
    "frequency_penalty": ("frequency_penalty", _number),
    "logit_bias": ("logit_bias", _logit_bias),
    "logprobs": ("logprobs", _bool),
    "top_logprobs": ("top_logprobs", _int),
    "reasoning_effort": ("reasoning_effort", _str),
    "user": ("user", _str),
}


def _within(value: float | int | None, low: float, high: float, path: str) -> None:
    if value is not None and not (math.isfinite(value) and low <= value <= high):
        raise _bad(path, f"must be within {low:g}..{high:g}")


def check(r: ChatRequest) -> None:
    """Ranges and shapes of the typed fields (after the parameters filled them)."""
    _within(r.temperature, 0, 2, "temperature")
    _within(r.top_p, 0, 1, "top_p")
    _within(r.presence_penalty, -2, 2, "presence_penalty")
    _within(r.frequency_penalty, -2, 2, "frequency_penalty")
    _within(r.n, 1, MAX_CHOICES, "n")
    _within(r.top_logprobs, 0, 20, "top_logprobs")
    _within(r.seed, -(2**63), 2**63 - 1, "seed")
    for name in ("max_tokens", "max_completion_tokens"):
        _within(getattr(r, name), 1, 2**31 - 1, name)
    if r.top_logprobs is not None and not r.logprobs:
        raise _bad("top_logprobs", "needs logprobs")
    if len(r.stop) > MAX_STOP or any(not s or len(s) > MAX_STOP_CHARS for s in r.stop):
        raise _bad("stop", f"up to {MAX_STOP} non-empty sequences of {MAX_STOP_CHARS} chars")
    if len(r.logit_bias) > MAX_LOGIT_BIAS:
        raise _bad("logit_bias", f"at most {MAX_LOGIT_BIAS} entries")
    for token, bias in r.logit_bias.items():
        if not token.isdigit():
            raise _bad("logit_bias", "keys are token ids (decimal)")
        _within(bias, -100, 100, f"logit_bias.{token}")
    if r.reasoning_effort and r.reasoning_effort not in REASONING_EFFORTS:
        raise _bad("reasoning_effort", "one of " + ", ".join(sorted(REASONING_EFFORTS)))
    if len(r.user) > MAX_USER_CHARS or "\x00" in r.user:
        raise _bad("user", f"up to {MAX_USER_CHARS} characters, no NUL")
    _check_tools(r)
    _check_format(r.response_format)
    for i, m in enumerate(r.messages):
        _check_message(m, f"messages[{i}]")
    if sum(len(m.images) for m in r.messages) > 16:
        raise _bad("messages", "at most 16 images in all")
    # What is sent is recorded too: nothing in it the store cannot hold (NUL, NaN).
    for name, value in (("messages", wire_messages(r.messages)), ("request", wire_fields(r))):
        problem = json_problem(value, limit=64)
        if problem:
            raise _bad(name, problem)


def _check_schema(schema: dict[str, Any] | None, path: str) -> None:
    if schema is None:
        return
    if json_size(schema) > MAX_SCHEMA_BYTES:
        raise _bad(path, f"at most {MAX_SCHEMA_BYTES} bytes of JSON")
    problem = json_problem(schema, MAX_SCHEMA_DEPTH)
    if problem:
        raise _bad(path, problem)


def _check_tools(r: ChatRequest) -> None:
    if len(r.tools) > MAX_TOOLS:
        raise _bad("tools", f"at most {MAX_TOOLS} tools")
    names = set()
    for i, tool in enumerate(r.tools):
        if not NAME.match(tool.name):
            raise _bad(f"tools[{i}].name", "letters, digits, _ and -, up to 64")
        if tool.name in names:
            raise _bad(f"tools[{i}].name", "duplicate tool name")
        names.add(tool.name)
        _check_schema(tool.parameters, f"tools[{i}].parameters")
    if r.tools and json_size([wire_tool(t) for t in r.tools]) > MAX_TOOLS_BYTES:
        raise _bad("tools", f"at most {MAX_TOOLS_BYTES} bytes of definitions")
    choice = r.tool_choice
    if choice is None:
        return
    if choice.function:
        if choice.function not in names:
            raise _bad("tool_choice.function_name", "names none of the request's tools")
    elif choice.mode not in TOOL_MODES:
        raise _bad("tool_choice", "none, auto, required or a function name")
    elif choice.mode == "required" and not r.tools:
        raise _bad("tool_choice", "required needs tools")


def _check_format(f: ResponseFormat | None) -> None:
    if f is None:
        return
    if f.type not in FORMATS:
        raise _bad("response_format.type", "text, json_object or json_schema")
    if f.type == "json_schema":
        if not NAME.match(f.name):
            raise _bad("response_format.json_schema.name", "letters, digits, _ and -, up to 64")
        if f.schema is None:
            raise _bad("response_format.json_schema.schema", "required")
        _check_schema(f.schema, "response_format.json_schema.schema")


def _check_message(m: ChatMessage, path: str) -> None:
    if m.parts and m.content:
        raise _bad(f"{path}.parts", "give content or parts, not both")
    if m.role is ChatRole.TOOL and not m.tool_call_id:
        raise _bad(f"{path}.tool_call_id", "required in a tool message")
    if m.role is not ChatRole.TOOL and m.tool_call_id:
        raise _bad(f"{path}.tool_call_id", "only in a tool message")
    if m.role is not ChatRole.ASSISTANT and (m.tool_calls or m.refusal):
        raise _bad(f"{path}.tool_calls", "only in an assistant message")
    if m.images and m.role is not ChatRole.USER:
        raise _bad(f"{path}.parts", "images only in user messages")
    if len(m.name) > 64:
        raise _bad(f"{path}.name", "up to 64 characters")
    for j, call in enumerate(m.tool_calls):
        if not call.id or not NAME.match(call.name):
            raise _bad(f"{path}.tool_calls[{j}]", "id and a valid name are required")
    for j, image in enumerate(m.images):
        if not image.url.startswith(("https://", "http://", "data:image/")):
            raise _bad(f"{path}.parts[{j}].image_url.url", "an http(s) URL or a data:image/ URL")
        if image.detail not in ("", "auto", "low", "high"):
            raise _bad(f"{path}.parts[{j}].image_url.detail", "auto, low or high")


def wire_tool(t: Tool) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": t.name}
    if t.description:
        fn["description"] = t.description
    if t.parameters is not None:
        fn["parameters"] = t.parameters
    if t.strict is not None:
        fn["strict"] = t.strict
    return {"type": "function", "function": fn}


def wire_response_format(f: ResponseFormat) -> dict[str, Any]:
    if f.type != "json_schema":
        return {"type": f.type}
    js: dict[str, Any] = {"name": f.name, "schema": f.schema}
    if f.description:
        js["description"] = f.description
    if f.strict is not None:
        js["strict"] = f.strict
    return {"type": "json_schema", "json_schema": js}


def wire_fields(r: ChatRequest) -> dict[str, Any]:
    """The typed fields that are set, in OpenAI's JSON."""
    out: dict[str, Any] = {}
    for name in (
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "parallel_tool_calls",
        "seed",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
        "top_logprobs",
    ):
        value = getattr(r, name)
        if value is not None:
            out[name] = value
    if r.tools:
        out["tools"] = [wire_tool(t) for t in r.tools]
    if r.tool_choice is not None:
        c = r.tool_choice
        out["tool_choice"] = (
            {"type": "function", "function": {"name": c.function}} if c.function else c.mode
        )
    if r.response_format is not None:
        out["response_format"] = wire_response_format(r.response_format)
    if r.stop:
        out["stop"] = list(r.stop)
    if r.logit_bias:
        out["logit_bias"] = dict(r.logit_bias)
    if r.reasoning_effort:
        out["reasoning_effort"] = r.reasoning_effort
    if r.user:
        out["user"] = r.user
    return out


def wire_messages(messages: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    """The messages in OpenAI's JSON."""
    out = []
    for m in messages:
        item: dict[str, Any] = {"role": m.role.value}
        if m.parts:
            item["content"] = [_wire_part(p) for p in m.parts]
        elif m.content or not m.tool_calls:
            item["content"] = m.content
        if m.name:
            item["name"] = m.name
        if m.tool_calls:
            item["tool_calls"] = [
                {"id": c.id, "type": "function", "function": _wire_call(c.name, c.arguments)}
                for c in m.tool_calls
            ]
        if m.tool_call_id:
            item["tool_call_id"] = m.tool_call_id
        if m.refusal:
            item["refusal"] = m.refusal
        out.append(item)
    return out


def _wire_call(name: str, arguments: str) -> dict[str, str]:
    return {"name": name, "arguments": arguments}


def _wire_part(p: str | ImagePart) -> dict[str, Any]:
    if isinstance(p, str):
        return {"type": "text", "text": p}
    image: dict[str, Any] = {"url": p.url}
    if p.detail:
        image["detail"] = p.detail
    return {"type": "image_url", "image_url": image}
