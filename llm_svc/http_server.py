"""The HTTP door's server: aiohttp in the gRPC server's own event loop (chosen by
measurement, llm_svc/README.md), one middleware that is the door's error boundary (the
request id, the in-flight limit, HTTP metrics and the trace span), started and stopped
with the service (``bootstrap``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway_common import metrics, tracing
from gateway_common.errors import DomainError
from gateway_common.logs import request_id_var
from llm_svc import http_errors
from llm_svc.http_errors import HttpError

log = logging.getLogger("llm.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS"})
_TRACER = tracing.tracer("llm_svc.http")
MAX_REQUEST_ID = 128


def reply(error: HttpError, request_id: str = "") -> web.Response:
    headers = dict(error.headers)
    if request_id:
        headers["x-request-id"] = request_id
    return web.json_response(error.body, status=error.status, headers=headers)


class Boundary:
    """Every request passes here: a request id (the client's X-Request-Id, else a new
    one) set for logs and the gRPC calls, 503 past ``max_in_flight``, domain errors in
    OpenAI's error shape, anything unexpected a generic 500 with the traceback logged."""

    def __init__(self, max_in_flight: int) -> None:
        self._max = max_in_flight
        self.in_flight = 0

    @web.middleware
    async def handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route = _route(request)
        method = request.method if request.method in _METHODS else "OTHER"
        status = 500
        given = request.headers.get("X-Request-Id", "")
        rid = given if _usable_id(given) else uuid.uuid4().hex
        request_id_var.set(rid)
        self.in_flight += 1
        try:
            with _span(request, route) as span:
                response = await self._handle(request, handler, rid, given)
                status = response.status
                if span is not None:
                    span.set_attribute("http.response.status_code", status)
                return response
        except asyncio.CancelledError:
            status = 499  # the client went away (nginx's code for it)
            raise
        finally:
            self.in_flight -= 1
            metrics.HTTP_LATENCY.labels(route, method).observe(time.perf_counter() - started)
            metrics.HTTP_HANDLED.labels(route, method, str(status)).inc()

    async def _handle(
        self, request: web.Request, handler: Handler, rid: str, given: str
    ) -> web.StreamResponse:
        if given and given != rid:
            bad = http_errors.error(
                400,
                f"X-Request-Id: up to {MAX_REQUEST_ID} printable ASCII characters",
                "invalid_request_error",
                "invalid_request_id",
                "X-Request-Id",
            )
            return reply(bad, rid)
        if self._max and self.in_flight > self._max:
            busy = http_errors.error(503, "overloaded: retry shortly", "server_error", "overloaded")
            busy.headers["Retry-After"] = "1"
            return reply(busy, rid)
        try:
            response = await handler(request)
        except DomainError as exc:
            return reply(http_errors.from_domain(exc), rid)
        except web.HTTPException as exc:  # aiohttp's own: unknown route, method, body size
            return reply(_http_exception(exc), rid)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unexpected error in %s %s", request.method, _route(request))
            return reply(http_errors.internal(), rid)
        if not response.prepared:
            response.headers["x-request-id"] = rid
        return response


def _usable_id(value: str) -> bool:
    return 0 < len(value) <= MAX_REQUEST_ID and value.isascii() and value.isprintable()


def _route(request: web.Request) -> str:
    """The matched route's template (bounded label values), or ``unmatched``."""
    info = request.match_info
    resource = info.route.resource if info.http_exception is None else None
    return resource.canonical if resource is not None else "unmatched"


@contextlib.contextmanager
def _span(request: web.Request, route: str) -> Any:
    if not tracing.enabled():
        yield None
        return
    from opentelemetry import propagate, trace

    context = propagate.extract(dict(request.headers))
    with _TRACER.start_as_current_span(
        f"{request.method} {route}",
        context=context,
        kind=trace.SpanKind.SERVER,
        attributes={"http.request.method": request.method, "http.route": route},
    ) as span:
        yield span


_KINDS = {
    404: ("not_found", "invalid_request_error", "no such route"),
    405: ("method_not_allowed", "invalid_request_error", "method not allowed on this route"),
    413: ("request_too_large", "invalid_request_error", "the request body is too large"),
    415: ("unsupported_media_type", "invalid_request_error", ""),
}


def _http_exception(exc: web.HTTPException) -> HttpError:
    code, kind, message = _KINDS.get(
        exc.status, ("bad_request", "invalid_request_error", exc.reason)
    )
    return http_errors.error(exc.status, message or exc.reason, kind, code)


class HttpDoor:
    """Listens on its own port; bound synchronously (a port in use fails the start)."""

    def __init__(self, app: web.Application, host: str, port: int, shutdown: float) -> None:
        self._app = app
        self._sock = socket.create_server((host, port), backlog=1024, reuse_port=False)
        self.port = int(self._sock.getsockname()[1])
        # handler_cancellation: a client that disconnects cancels its call (the cancel rule).
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=shutdown,
        )
        self._started: asyncio.Task[None] | None = None

    def start_soon(self) -> None:
        self._started = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()
        log.info("http serving", extra={"port": self.port})

    async def stop(self) -> None:
        if self._started is not None:
            with contextlib.suppress(Exception):
                await self._started
        await self._runner.cleanup()
