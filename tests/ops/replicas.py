"""Replicas as ops see them: a headless-Service-style DNS name (A records of the ready
replicas, one port) that a gRPC client resolves itself, and tiny servers built on the
suite's own GrpcServer that say which replica answered."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from gateway_common.server import GrpcServer, ServiceSpec
from gateway_common.settings import ServiceSettings

METHOD = "/ops.test.Replica/Who"


class HeadlessDns(asyncio.DatagramProtocol):
    """Answers every A query with ``addresses`` (what the cluster DNS does for a headless
    Service: one record per ready pod). Good enough for gRPC's c-ares resolver."""

    def __init__(self) -> None:
        self.addresses: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.queries = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.queries += 1
        qid, end = data[:2], 12
        while data[end] != 0:  # the question's name: length-prefixed labels
            end += data[end] + 1
        question = data[12 : end + 5]
        qtype = struct.unpack("!H", data[end + 1 : end + 3])[0]
        records = [a for a in self.addresses] if qtype == 1 else []
        header = qid + struct.pack("!HHHHH", 0x8180, 1, len(records), 0, 0)
        answers = b"".join(
            struct.pack("!HHHIH", 0xC00C, 1, 1, 1, 4) + bytes(int(p) for p in a.split("."))
            for a in records
        )
        self.transport.sendto(header + question + answers, addr)


@contextlib.asynccontextmanager
async def headless_dns() -> AsyncIterator[tuple[HeadlessDns, int]]:
    loop = asyncio.get_running_loop()
    transport, dns = await loop.create_datagram_endpoint(HeadlessDns, local_addr=("127.0.0.1", 0))
    try:
        yield dns, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


def replica_spec(name: str, work: Callable[[], Awaitable[None]] | None = None) -> ServiceSpec:
    """A server whose one method answers its replica's name (after ``work``, if any)."""

    async def who(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        if work is not None:
            await work()
        return name.encode()

    handler = grpc.method_handlers_generic_handler(
        "ops.test.Replica", {"Who": grpc.unary_unary_rpc_method_handler(who)}
    )

    def register(server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((handler,))

    return ServiceSpec(domain="ops.test", service_names=["ops.test.Replica"], register=register)


async def start_replica(settings: ServiceSettings, host: str, port: int, name: str) -> GrpcServer:
    server = GrpcServer(
        settings.model_copy(update={"host": host, "port": port, "shutdown_delay_seconds": 0}),
        replica_spec(name),
    )
    await server.start()
    return server


async def who(channel: grpc.aio.Channel, timeout: float = 2.0) -> str:
    call = channel.unary_unary(METHOD)
    return bytes(await call(b"", timeout=timeout)).decode()
