"""An OpenAI-compatible fake model provider for local runs, tests and benchmarks.

``POST /v1/embeddings`` answers ``fake_answers.vector(text)`` per input (8 numbers in
-1..1 from the text's SHA-256, or ``dimensions`` of them), usage its words.
``POST /v1/chat/completions`` answers deterministically (the rules, tools, JSON
modes, images, n and usage details included, are in :mod:`fake_answers`): the
answer is ``"Echo: " + <last user message>``, usage counts whitespace-separated
words (prompt: all messages; completion: the answer). ``stream: true`` sends
each choice as server-sent events (text word by word, tool calls as an opening
delta then argument fragments), with a final usage chunk when
``stream_options.include_usage`` is set.

Injectable behaviour:
- markers in the last user message: ``[[fail:503]]`` answers that HTTP status,
  ``[[delay:250]]`` waits 250 ms first, ``[[slowstream:50]]`` waits 50 ms
  between stream chunks;
- process-wide settings from the command line or ``POST /_control`` with JSON
  ``{"latency_ms": 0, "fail_status": 0, "fail_every": 0, "retry_after": "",
  "stream_fail_after": 0}``: ``fail_every`` N fails every Nth completion call (with
  ``fail_status``, 503 when unset), ``retry_after`` is sent as the Retry-After header of
  injected failures, ``stream_fail_after`` N ends each stream with an error event after
  its Nth content piece (a provider failing part-way);
- ``GET /_stats`` returns the number of completion calls and the last
  request's Authorization header and body (for tests); ``POST /_stats/reset``.

Run: ``python -m devtools.fake_provider --port 18080``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

from aiohttp import web

from devtools import fake_answers


class FakeProvider:
    def __init__(self, latency_ms: int = 0, fail_status: int = 0, fail_every: int = 0) -> None:
        self.latency_ms = latency_ms
        self.fail_status = fail_status
        self.fail_every = fail_every
        self.retry_after = ""
        self.stream_fail_after = 0
        self.calls = 0
        self.failures = 0
        self.last_request: dict[str, Any] = {}
        self.last_authorization = ""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.completions)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/_stats", self.stats)
        app.router.add_post("/_stats/reset", self.reset)
        app.router.add_post("/_control", self.control)
        app.router.add_get("/health", self.health)
        return app

    async def health(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def stats(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "calls": self.calls,
                "failures": self.failures,
                "last_request": self.last_request,
                "last_authorization": self.last_authorization,
            }
        )

    async def reset(self, _: web.Request) -> web.Response:
        self.calls = 0
        self.failures = 0
        self.last_request = {}
        self.last_authorization = ""
        return web.json_response({"ok": True})

    async def control(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.latency_ms = int(body.get("latency_ms", self.latency_ms))
        self.fail_status = int(body.get("fail_status", self.fail_status))
        self.fail_every = int(body.get("fail_every", self.fail_every))
        self.retry_after = str(body.get("retry_after", self.retry_after))
        self.stream_fail_after = int(body.get("stream_fail_after", self.stream_fail_after))
        return web.json_response(
            {
                "latency_ms": self.latency_ms,
                "fail_status": self.fail_status,
                "fail_every": self.fail_every,
                "retry_after": self.retry_after,
                "stream_fail_after": self.stream_fail_after,
            }
        )

    async def models(self, _: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}
        )

    async def embeddings(self, request: web.Request) -> web.Response:
        """Deterministic vectors (``fake_answers.vector``); usage counts words."""
        self.calls += 1
        self.last_authorization = request.headers.get("Authorization", "")
        try:
            body = await request.json()
            raw = body["input"]
            inputs = [raw] if isinstance(raw, str) else list(raw)
            size = int(body.get("dimensions") or fake_answers.EMBED_DIMENSIONS)
        except (ValueError, KeyError, TypeError):
            return _error(400, "invalid_request_error", "body must hold an input")
        self.last_request = body
        data = [
            {"object": "embedding", "index": i, "embedding": fake_answers.vector(str(t), size)}
            for i, t in enumerate(inputs)
        ]
        tokens = sum(len(str(t).split()) for t in inputs)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": str(body.get("model", "fake-model")),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def completions(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        self.last_authorization = request.headers.get("Authorization", "")
        try:
            body = await request.json()
            question = fake_answers.text_of(fake_answers.last_user(body["messages"]).get("content"))
        except (ValueError, KeyError, TypeError, AttributeError):
            return _error(400, "invalid_request_error", "body must hold a messages array")
        self.last_request = body
        flags = fake_answers.markers(question)
        delay = flags.get("delay", self.latency_ms)
        if delay:
            await asyncio.sleep(delay / 1000)
        fail = flags.get("fail", 0) or self._scheduled_failure()
        if fail:
            self.failures += 1
            response = _error(fail, "fake_failure", f"injected failure {fail}")
            if self.retry_after:
                response.headers["Retry-After"] = self.retry_after
            return response
        try:
            choices, usage = fake_answers.answer(body)
        except (ValueError, KeyError, TypeError, AttributeError):
            return _error(400, "invalid_request_error", "malformed request")
        model = str(body.get("model", "fake-model"))
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            pause = flags.get("slowstream", 0) / 1000
            sent = usage if include_usage else None
            return await _stream(request, model, choices, sent, pause, self.stream_fail_after)
        return web.json_response(
            {
                "id": "chatcmpl-" + uuid.uuid4().hex,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": choices,
                "usage": usage,
            }
        )

    def _scheduled_failure(self) -> int:
        """The process-wide failure of this call: always, every Nth call, or none."""
        if self.fail_every:
            return (self.fail_status or 503) if self.calls % self.fail_every == 0 else 0
        return self.fail_status


async def _stream(
    request: web.Request,
    model: str,
    choices: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    pause: float,
    fail_after: int = 0,
) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    cid = "chatcmpl-" + uuid.uuid4().hex
    base = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    async def send(choices: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> None:
        chunk = {**base, "choices": choices, **(extra or {})}
        await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())

    pieces = 0
    for choice in choices:
        i = choice["index"]
        opening = {"role": "assistant", "content": ""}
        await send([{"index": i, "delta": opening, "finish_reason": None}])
        for piece in fake_answers.stream_pieces(choice):
            if pause:
                await asyncio.sleep(pause)
            await send([{"index": i, "delta": piece, "finish_reason": None}])
            pieces += 1
            if fail_after and pieces >= fail_after:  # the SDK raises on an error event
                failure = {"error": {"message": "injected stream failure", "type": "server_error"}}
                await resp.write(f"data: {json.dumps(failure)}\n\n".encode())
                await resp.write_eof()
                return resp
        await send([{"index": i, "delta": {}, "finish_reason": choice["finish_reason"]}])
    if usage is not None:
        await send([], {"usage": usage})
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": kind, "code": kind}}, status=status
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--fail-status", type=int, default=0)
    parser.add_argument("--fail-every", type=int, default=0, help="fail every Nth call")
    args = parser.parse_args()
    provider = FakeProvider(args.latency_ms, args.fail_status, args.fail_every)
    web.run_app(provider.app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
