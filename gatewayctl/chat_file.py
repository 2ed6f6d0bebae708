"""`gatewayctl chat --file F`: a chat request written as OpenAI's JSON (messages, tools and
any other chat parameter) turned into an llmgw.llm.v1 request, and tool calls printed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from gatewayctl.client import CliError
from llmgw.llm.v1 import llm_pb2 as lpb

ROLES = {
    "system": lpb.MESSAGE_ROLE_SYSTEM,
    "developer": lpb.MESSAGE_ROLE_DEVELOPER,
    "user": lpb.MESSAGE_ROLE_USER,
    "assistant": lpb.MESSAGE_ROLE_ASSISTANT,
    "tool": lpb.MESSAGE_ROLE_TOOL,
}
DETAILS = {
    "auto": lpb.IMAGE_DETAIL_AUTO,
    "low": lpb.IMAGE_DETAIL_LOW,
    "high": lpb.IMAGE_DETAIL_HIGH,
}


def load(path: str) -> dict[str, Any]:
    """The file's JSON object: {"messages": [...], "tools": [...], <other parameters>}."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}", 2) from None
    if not isinstance(data, dict):
        raise CliError(f"{path}: a JSON object with messages (and tools) is expected", 2)
    return data


def request_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Messages and tools as typed fields; every other key goes in ``parameters``
    (the gateway checks them against the chat schema)."""
    data = dict(data)
    try:
        messages = [message(m) for m in data.pop("messages", [])]
        tools = [tool(t) for t in data.pop("tools", [])]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CliError(f"bad chat file: {exc}", 2) from None
    fields: dict[str, Any] = {"messages": messages, "tools": tools}
    if data:
        fields["parameters"] = json_format.ParseDict(data, lpb.ChatRequest().parameters)
    return fields


def message(m: dict[str, Any]) -> lpb.Message:
    out = lpb.Message(
        role=ROLES[m["role"]],
        name=m.get("name", ""),
        tool_call_id=m.get("tool_call_id", ""),
        refusal=m.get("refusal") or "",
    )
    content = m.get("content")
    if isinstance(content, str):
        out.content = content
    for part in content if isinstance(content, list) else ():
        if part["type"] == "text":
            out.parts.add(text=part["text"])
        else:
            image = part["image_url"]
            url = image if isinstance(image, str) else image["url"]
            wanted = image.get("detail", "") if isinstance(image, dict) else ""
            detail = DETAILS.get(wanted, lpb.IMAGE_DETAIL_UNSPECIFIED)
            out.parts.add(image_url=lpb.ImageUrl(url=url, detail=detail))
    for call in m.get("tool_calls") or ():
        fn = call["function"]
        out.tool_calls.add(id=call["id"], name=fn["name"], arguments=fn.get("arguments", ""))
    return out


def tool(t: dict[str, Any]) -> lpb.Tool:
    fn = t["function"]
    out = lpb.Tool(name=fn["name"], description=fn.get("description", ""))
    if "parameters" in fn:
        out.parameters.update(fn["parameters"])
    if "strict" in fn:
        out.strict = bool(fn["strict"])
    return out


def print_answer(reply: lpb.ChatResponse, *, text_printed: bool = False) -> None:
    """Each choice's text (unless streamed already) and tool calls, one call a line."""
    many = len(reply.choices) > 1
    for choice in reply.choices or [lpb.Choice(content=reply.content)]:
        if many:
            print(f"--- choice {choice.index} ({choice.finish_reason})")
        if choice.content and not (text_printed and choice.index == 0):
            print(choice.content)
        if choice.refusal:
            print(f"refusal: {choice.refusal}")
        for call in choice.tool_calls:
            print(f"tool call {call.id}: {call.name}({call.arguments})")
    sys.stdout.flush()
