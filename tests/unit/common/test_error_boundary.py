"""The error boundary, through a real in-process gRPC server."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway_common import errors
from gateway_common.server import ServiceSpec
from gateway_common.settings import ServiceSettings
from gateway_common.status import error_info
from tests.support import running_server

SERVICE = "test.v1.ProbeService"


def _raise_for(name: bytes) -> None:
    table: dict[bytes, Exception] = {
        b"invalid": errors.InvalidArgument.field("name", "must not be empty"),
        b"missing": errors.NotFound("tenant not found", "TENANT_NOT_FOUND"),
        b"quota": errors.ResourceExhausted(
            "monthly limit reached",
            "QUOTA_EXCEEDED",
            [errors.QuotaViolation("user:u1", "100 of 100 requests used")],
            {"reset_time": "2026-12-01T00:00:00Z"},
        ),
        b"bug": RuntimeError("SELECT secret FROM keys -- password=hunter2"),
        b"todo": NotImplementedError(),
    }
    if name in table:
        raise table[name]


async def unary(request: bytes, context: Any) -> bytes:
    _raise_for(request)
    return b"ok:" + request


async def stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"first"
    _raise_for(request)
    yield b"second"


def _register(server: grpc.aio.Server) -> None:
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


@pytest.fixture
async def channel():
    spec = ServiceSpec(domain="test.llmgw", service_names=[SERVICE], register=_register)
    async with running_server(ServiceSettings(), spec) as (_, chan):
        yield chan


async def call(channel: grpc.aio.Channel, payload: bytes) -> bytes:
    method = channel.unary_unary(f"/{SERVICE}/Unary")
    return await method(payload, timeout=5)  # type: ignore[no-any-return]


async def test_success_passes_through(channel):
    assert await call(channel, b"hello") == b"ok:hello"


async def test_invalid_argument_carries_error_info_and_bad_request(channel):
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call(channel, b"invalid")
    err = exc.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(err)
    assert info is not None and info.reason == "INVALID_ARGUMENT" and info.domain == "test.llmgw"
    status = rpc_status.from_call(err)
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR))
    assert bad.field_violations[0].field == "name"


async def test_not_found_reason(channel):
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call(channel, b"missing")
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(exc.value).reason == "TENANT_NOT_FOUND"


async def test_resource_exhausted_carries_quota_failure(channel):
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call(channel, b"quota")
    err = exc.value
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info = error_info(err)
    assert info.metadata["reset_time"] == "2026-12-01T00:00:00Z"
    qf = error_details_pb2.QuotaFailure()
    status = rpc_status.from_call(err)
    assert any(d.Unpack(qf) for d in status.details if d.Is(qf.DESCRIPTOR))
    assert qf.violations[0].subject == "user:u1"


async def test_unexpected_error_is_internal_without_leaking(channel, caplog):
    with caplog.at_level(logging.ERROR), pytest.raises(grpc.aio.AioRpcError) as exc:
        await call(channel, b"bug")
    err = exc.value
    assert err.code() == grpc.StatusCode.INTERNAL
    assert err.details() == "internal error"
    assert "hunter2" not in str(err.trailing_metadata()) and "SELECT" not in err.details()
    # The traceback is kept server-side for operators.
    assert any("hunter2" in (r.exc_text or str(r.exc_info)) for r in caplog.records)


async def test_not_implemented_is_unimplemented(channel):
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call(channel, b"todo")
    assert exc.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_stream_error_after_first_item_gets_its_code(channel):
    method = channel.unary_stream(f"/{SERVICE}/Stream")
    got: list[bytes] = []
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        async for item in method(b"missing", timeout=5):
            got.append(item)
    assert got == [b"first"]
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


async def test_request_id_is_logged_with_calls(channel):
    import io

    from gateway_common.logs import JsonFormatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("t"))
    logger = logging.getLogger("gateway.rpc")
    logger.addHandler(handler)
    method = channel.unary_unary(f"/{SERVICE}/Unary")
    try:
        with pytest.raises(grpc.aio.AioRpcError):
            await method(b"bug", timeout=5, metadata=(("x-request-id", "req-123"),))
    finally:
        logger.removeHandler(handler)
    line = json.loads(out.getvalue().splitlines()[0])
    assert line["request_id"] == "req-123"
    assert line["level"] == "ERROR" and "exc" in line
