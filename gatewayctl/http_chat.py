"""``gatewayctl chat --http URL``: the same chat through llm's OpenAI-compatible HTTP
door, with the real ``openai`` SDK (what existing OpenAI code does), streamed or whole.
HTTP statuses map to the CLI's exit codes as their gRPC codes would."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import openai

from gatewayctl import chat_file
from gatewayctl.client import CliError

# HTTP status -> exit code (as EXIT_CODES for the gRPC code the door maps it from).
_EXIT = {400: 3, 404: 4, 403: 6, 401: 7, 429: 8, 409: 10, 503: 11, 504: 12, 413: 3, 415: 3}


def chat(a: argparse.Namespace, api_key: str, timeout: float) -> None:
    body: dict[str, Any] = chat_file.load(a.file) if a.file else {}
    messages = list(body.pop("messages", []))
    if a.system:
        messages.insert(0, {"role": "system", "content": a.system})
    if a.message:
        messages.append({"role": "user", "content": " ".join(a.message)})
    if not messages:
        raise CliError("nothing to send: give a message or --file", 2)
    for name in ("temperature", "max_tokens", "top_p"):
        if getattr(a, name) is not None:
            body[name] = getattr(a, name)
    base = a.http.rstrip("/")
    client = openai.OpenAI(
        api_key=api_key or "none",
        base_url=base if base.endswith("/v1") else base + "/v1",
        max_retries=0,
        timeout=timeout,
    )
    headers = {"Idempotency-Key": a.idempotency_key} if a.idempotency_key else {}
    try:
        if a.no_stream:
            reply = client.chat.completions.create(
                model=a.model, messages=messages, extra_headers=headers, extra_body=body
            )
            for choice in reply.choices:
                print(choice.message.content or "")
                for call in choice.message.tool_calls or []:
                    fn = getattr(call, "function", None)
                    if fn is not None:
                        print(f"tool call {call.id}: {fn.name}({fn.arguments})")
            _footer(reply.model, reply.usage, reply.id)
            return
        stream = client.chat.completions.create(
            model=a.model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=headers,
            extra_body=body,
        )
        usage, cid = None, ""
        for chunk in stream:
            cid = chunk.id
            for c in chunk.choices:
                sys.stdout.write(c.delta.content or "")
                sys.stdout.flush()
            usage = chunk.usage or usage
        print()
        _footer(a.model, usage, cid)
    except openai.APIStatusError as err:
        code = _EXIT.get(err.status_code, 1)
        raise CliError(err.message, code) from None
    except openai.APIConnectionError as err:
        raise CliError(f"cannot reach {a.http}: {err}", 11) from None
    finally:
        client.close()


def _footer(model: str, usage: Any, cid: str) -> None:
    tokens = f"{usage.prompt_tokens}+{usage.completion_tokens} tokens" if usage else "no usage"
    print(f"[{model} · {tokens} · {cid.removeprefix('chatcmpl-')}]", file=sys.stderr)
