"""The one error boundary of every service, plus request ids and RPC metrics.

Domain errors become their status code with ``google.rpc.Status`` details;
anything unexpected becomes INTERNAL with a generic message, its traceback
logged server-side only.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from gateway_common import metrics, request_check, status
from gateway_common.auth import REQUEST_ID, metadata_value
from gateway_common.errors import DomainError, Unavailable, Unimplemented
from gateway_common.logs import request_id_var

log = logging.getLogger("gateway.rpc")


NEVER_SHED = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection")


class Slots:
    """The bound on calls in flight (GATEWAY_MAX_CONCURRENT_RPCS; 0 = none). One event
    loop per server, so a plain counter suffices."""

    def __init__(self, limit: int = 0) -> None:
        self.limit = limit
        self.in_flight = 0

    def take(self, service: str) -> bool:
        """True when a slot was taken (free it after); raises when the server is full."""
        if not self.limit or service in NEVER_SHED:
            return False
        if self.in_flight >= self.limit:
            metrics.RPC_SHED.labels(service).inc()
            raise Unavailable("server overloaded: retry, preferably elsewhere", "OVERLOADED")
        self.in_flight += 1
        metrics.RPC_IN_FLIGHT.set(self.in_flight)
        return True

    def free(self) -> None:
        self.in_flight -= 1
        metrics.RPC_IN_FLIGHT.set(self.in_flight)


class ErrorBoundary(grpc.aio.ServerInterceptor):
    def __init__(self, domain: str, slots: Slots | None = None) -> None:
        self.domain = domain
        self.slots = slots or Slots()

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method or ""
        service_name, _, method_name = method.lstrip("/").rpartition("/")
        labels = (service_name, method_name)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, labels),
                request_deserializer=request_check.tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, labels),
                request_deserializer=request_check.tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler

    def _wrap_unary(self, behavior: Any, labels: tuple[str, str]) -> Any:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = _begin(context)
            code = "OK"
            held = False
            try:
                held = self.slots.take(labels[0])
                _admit(request)
                return await behavior(request, context)
            except Exception as exc:  # noqa: BLE001 - this is the boundary
                failure = self._classify(exc, context, labels)
                code = failure.code.name
                await context.abort(failure.code, failure.details, failure.trailing_metadata)
            finally:
                if held:
                    self.slots.free()
                _finish(labels, code, started)

        return wrapper

    def _wrap_stream(self, behavior: Any, labels: tuple[str, str]) -> Any:
        async def wrapper(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            started = _begin(context)
            code = "OK"
            held = False
            try:
                held = self.slots.take(labels[0])
                _admit(request)
                async for item in behavior(request, context):
                    yield item
            except Exception as exc:  # noqa: BLE001 - this is the boundary
                failure = self._classify(exc, context, labels)
                code = failure.code.name
                await context.abort(failure.code, failure.details, failure.trailing_metadata)
            finally:
                if held:
                    self.slots.free()
                _finish(labels, code, started)

        return wrapper

    def _classify(
        self, exc: Exception, context: grpc.aio.ServicerContext[Any, Any], labels: tuple[str, str]
    ) -> grpc.Status:
        """The status ``exc`` stands for; re-raises a handler's own abort."""
        if isinstance(exc, grpc.aio.AbortError):
            raise exc
        if isinstance(exc, DomainError):
            rich = status.to_rpc_status(exc, self.domain)
        elif isinstance(exc, NotImplementedError):
            rich = status.to_rpc_status(Unimplemented("method not implemented yet"), self.domain)
        else:
            log.error("unexpected error in %s/%s", *labels, exc_info=exc)
            rich = status.internal_status()
        return status.to_grpc_status(rich)


def _admit(request: Any) -> None:
    """Bad input stops here, the same way in every service (see request_check)."""
    if isinstance(request, request_check.Undecodable):
        raise request_check.undecodable()
    if isinstance(request, Message):
        request_check.check_request(request)


def _begin(context: grpc.aio.ServicerContext[Any, Any]) -> float:
    rid = metadata_value(context.invocation_metadata(), REQUEST_ID) or uuid.uuid4().hex
    request_id_var.set(rid)
    return time.perf_counter()


def _finish(labels: tuple[str, str], code: str, started: float) -> None:
    elapsed = time.perf_counter() - started
    metrics.RPC_LATENCY.labels(*labels).observe(elapsed)
    metrics.RPC_HANDLED.labels(*labels, code).inc()
