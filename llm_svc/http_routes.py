"""The HTTP door's routes: OpenAI's JSON in, the same use cases the gRPC servicer calls,
OpenAI's JSON (or server-sent events) out. Thin, like the servicer: read the caller,
translate (``http_request``), one use case, translate back (``http_response``)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway_common.auth import AUTHORIZATION, bearer_token
from gateway_common.errors import DomainError, InvalidArgument, NotFound
from gateway_common.logs import request_id_var
from llm_svc import http_errors, http_request, http_response
from llm_svc.domain import ChatAnswer, Reservation
from llm_svc.http_server import Boundary
from llm_svc.service import ChatService
from llm_svc.service_embed import EmbedService

log = logging.getLogger("llm.http")
Ready = Callable[[], Awaitable[list[str]]]  # the dependencies not answering
_JSON = "application/json"


class Routes:
    def __init__(
        self, chat: ChatService, embed: EmbedService, ready: Ready, timeout: float
    ) -> None:
        self._chat = chat
        self._embed = embed
        self._ready = ready
        self._timeout = timeout
        self.draining = False

    def app(self, max_body: int, max_in_flight: int) -> web.Application:
        app = web.Application(
            client_max_size=max_body, middlewares=[Boundary(max_in_flight).handle]
        )
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/v1/models/{model}", self.model)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        return app

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        call = http_request.chat_call(body, request.headers.get("Idempotency-Key", ""))
        key, remaining = _key(request), self._remaining(request)
        headers: dict[str, str] = {}
        admitted: list[Reservation] = []

        def on_admit(r: Reservation) -> None:
            admitted.append(r)
            headers.update(http_errors.quota_headers(r.limit, r.remaining, r.resets))
            headers.update(http_errors.ratelimit_headers(r))

        rid = _rid(request)
        if not call.stream:
            answer = await self._chat.chat(key, call.request, remaining, rid, on_admit)
            return _json_reply(http_response.chat_completion(answer), headers)
        events = self._chat.chat_stream(key, call.request, remaining, rid, on_admit)
        try:
            first = await anext(events)  # admission: its errors are still a plain status
        except BaseException:
            await events.aclose()
            raise
        writer = http_response.ChunkWriter(admitted[0].request_id, call.request.model)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "x-request-id": rid,
                **headers,
            }
        )
        await response.prepare(request)
        try:
            event: Any = first
            while True:
                if isinstance(event, ChatAnswer):  # settled: the end of the answer
                    for chunk in writer.finish(event):
                        await _send(response, chunk)
                    if call.include_usage:
                        await _send(response, writer.usage(event.usage))
                    await response.write(b"data: [DONE]\n\n")
                    break
                await _send(response, writer.delta(event))
                event = await anext(events)
        except ConnectionResetError:  # the client went away: the stream's cancel rule
            return response
        except DomainError as exc:  # failed part-way: OpenAI's SDKs raise on an error event
            await _last_word(response, http_errors.from_domain(exc))
        except Exception:
            log.exception("unexpected error in a chat stream")
            await _last_word(response, http_errors.internal())
        finally:
            await events.aclose()  # the client gone: the stream's cancel rule applies
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        body = await _json(request)
        embed = http_request.embed_request(body, request.headers.get("Idempotency-Key", ""))
        headers: dict[str, str] = {}

        def on_admit(r: Reservation) -> None:
            headers.update(http_errors.quota_headers(r.limit, r.remaining, r.resets))
            headers.update(http_errors.ratelimit_headers(r))

        answer = await self._embed.embed(
            _key(request), embed, self._remaining(request), _rid(request), on_admit
        )
        return _json_reply(http_response.embeddings(answer, embed.base64), headers)

    async def models(self, request: web.Request) -> web.StreamResponse:
        return _json_reply(http_response.models(await self._models(request)))

    async def model(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["model"]
        for m in await self._models(request):
            if m["name"] == name:
                return _json_reply(http_response.model(m))
        raise NotFound(f"the model {name!r} does not exist or is not enabled", "MODEL_NOT_FOUND")

    async def healthz(self, _: web.Request) -> web.StreamResponse:
        return _json_reply({"status": "ok"})

    async def readyz(self, _: web.Request) -> web.StreamResponse:
        down = ["draining"] if self.draining else await self._ready()
        if down:
            return _json_reply({"status": "unavailable", "not_ready": down}, status=503)
        return _json_reply({"status": "ok"})

    async def _models(self, request: web.Request) -> list[dict[str, Any]]:
        key, remaining = _key(request), self._remaining(request)
        found: list[dict[str, Any]] = []
        token = ""
        for _ in range(20):  # 10,000 models at most: far past any tenant's
            page = await self._chat.list_models(key, 500, token, remaining)
            found += page.models
            token = page.next_page_token
            if not token:
                break
        return found

    def _remaining(self, request: web.Request) -> Callable[[], float]:
        """The call's deadline: X-Request-Timeout seconds (capped by the setting)."""
        asked = request.headers.get("X-Request-Timeout", "")
        budget = self._timeout
        if asked:
            try:
                value = float(asked)
            except ValueError:
                value = math.nan
            if not (math.isfinite(value) and value > 0):
                raise InvalidArgument.field("X-Request-Timeout", "a positive number of seconds")
            budget = min(value, self._timeout)
        deadline = time.monotonic() + budget
        return lambda: max(deadline - time.monotonic(), 0.001)


def _key(request: web.Request) -> str:
    return bearer_token([(AUTHORIZATION, request.headers.get("Authorization", ""))])


def _rid(_: web.Request) -> str:
    return request_id_var.get()  # set by the boundary (the client's X-Request-Id)


async def _json(request: web.Request) -> Any:
    """The body as JSON: 415 for another content type, 413 past the size limit (aiohttp),
    400 for what does not parse (NaN and infinities are not JSON)."""
    if request.content_type != _JSON:
        raise _unsupported(request.content_type)
    raw = await request.read()
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise InvalidArgument("the body is not valid JSON", "INVALID_JSON") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)


def _unsupported(content_type: str) -> web.HTTPException:
    return web.HTTPUnsupportedMediaType(
        reason=f"Content-Type must be {_JSON}, not {content_type or 'none'}"
    )


def _json_reply(
    body: dict[str, Any], headers: dict[str, str] | None = None, status: int = 200
) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        status=status,
        content_type=_JSON,
        headers=headers,
    )


async def _last_word(response: web.StreamResponse, error: http_errors.HttpError) -> None:
    with contextlib.suppress(ConnectionResetError):
        await _send(response, error.body)


async def _send(response: web.StreamResponse, chunk: dict[str, Any]) -> None:
    data = json.dumps(chunk, separators=(",", ":"), ensure_ascii=False)
    await response.write(f"data: {data}\n\n".encode())
