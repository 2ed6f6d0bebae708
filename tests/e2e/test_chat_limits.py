"""Issue 13 findings on the chat surface, through the whole suite: 4 (request parameters
bounded in size and shape, keys the store cannot hold refused or encoded) and 6 (a refused
or reset provider connection is UNAVAILABLE, only a real timeout DEADLINE_EXCEEDED)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import struct_pb2

from llmgw.llm.v1 import llm_pb2
from tests.e2e.conftest import Suite
from tests.e2e.test_chat_surface import chat, params, refusal, stored, user
from tests.e2e.world import bearer, make_tenant
from tests.support import free_port

# -- issue 13, finding 4: parameters bounded in size and shape, nothing unstorable -------


async def test_parameters_bounded_and_unstorable_keys_refused(suite: Suite) -> None:
    t = await make_tenant(suite, allowed_extras=("blob", "deep", "odd"))
    deep: dict[str, Any] = {"x": 1}
    for _ in range(20):
        deep = {"d": deep}
    nan = struct_pb2.Struct()
    nan.fields["blob"].number_value = float("nan")
    cases: list[tuple[struct_pb2.Struct, str]] = [
        (params(blob="x" * (1024 * 1024)), "parameters"),  # the 3.9 MiB of the finding, smaller
        (params(blob="x" * 40_000), "parameters"),
        (params(deep=deep), "parameters"),
        (nan, "parameters.blob"),
        (params(**{"$where": "sleep(1000)"}), "parameters.$where"),
        (params(**{"a.b": 1}), "parameters.a.b"),
        (params(odd="a\x00b"), "parameters"),
    ]
    calls = suite.provider_stats()["calls"]
    for value, field in cases:
        _, fields = await refusal(
            chat(t, user("hi"), parameters=value), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert fields[0] == field
    assert suite.provider_stats()["calls"] == calls and await t.used() == 0
    # Nested "$" and dotted keys of an allowed extra are stored encoded; history reads back.
    reply = await chat(t, user("hi"), parameters=params(odd={"$set": {"a.b": 1}}))
    doc = await stored(suite, reply.interaction_id)
    assert doc["metadados"]["parametros_prompt"]["odd"] == {"%24set": {"a%2Eb": 1}}
    assert suite.provider_stats()["last_request"]["odd"] == {"$set": {"a.b": 1}}  # sent as is
    assert len(await t.interactions(want=1)) == 1


# -- issue 13, finding 6: refused/reset connection UNAVAILABLE, timeout DEADLINE_EXCEEDED --


async def _resetting_server() -> tuple[asyncio.Server, int]:
    """Reads the request, then resets the connection (RST, no HTTP answer)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(64)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_refused_and_reset_connections_are_unavailable(suite: Suite) -> None:
    nobody = await make_tenant(suite, base_url=f"http://127.0.0.1:{free_port()}/v1")
    reason, _ = await refusal(chat(nobody, user("hi")), grpc.StatusCode.UNAVAILABLE)
    assert reason == "PROVIDER_UNAVAILABLE"
    server, port = await _resetting_server()
    try:
        reset = await make_tenant(suite, base_url=f"http://127.0.0.1:{port}/v1")
        reason, _ = await refusal(chat(reset, user("hi")), grpc.StatusCode.UNAVAILABLE)
        assert reason == "PROVIDER_UNAVAILABLE"
        stream = reset.llm.ChatStream(
            llm_pb2.ChatStreamRequest(model=reset.model, messages=[user("hi")]),
            metadata=bearer(reset.user_key),
            timeout=10,
        )
        reason, _ = await refusal(_drain(stream), grpc.StatusCode.UNAVAILABLE)
        assert reason == "PROVIDER_UNAVAILABLE"
    finally:
        server.close()
    assert await nobody.used() == 0 and await reset.used() == 0  # refunded
    # A real timeout is still DEADLINE_EXCEEDED.
    slow = await make_tenant(suite)
    req = llm_pb2.ChatRequest(model=slow.model, messages=[user("[[delay:3000]] hi")])
    call = slow.llm.Chat(req, metadata=bearer(slow.user_key), timeout=1.0)
    reason, _ = await refusal(call, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert reason == "PROVIDER_TIMEOUT"


async def _drain(stream: AsyncIterator[Any]) -> None:
    async for _ in stream:
        pass
