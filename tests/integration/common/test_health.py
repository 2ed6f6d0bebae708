"""A service whose database is down reports NOT_SERVING and recovers by itself."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway_common import db
from gateway_common.server import ServiceSpec
from gateway_common.settings import ServiceSettings
from tests.support import PG_PORT, Cable, running_server

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def wait_for_status(stub, wanted, timeout=15.0):
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = (await stub.Check(health_pb2.HealthCheckRequest(service="probe.v1.S"))).status
        if last == wanted:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"health stayed {last}, wanted {wanted}")


async def test_not_serving_while_database_is_down_then_recovers():
    cable = Cable(PG_PORT)
    await cable.plug()
    url = f"postgresql+psycopg://gateway:gateway@127.0.0.1:{cable.port}/postgres"
    engine = db.make_engine(url, pool_size=1, max_overflow=0)

    async def probe() -> None:
        await db.ping(engine)

    spec = ServiceSpec(
        domain="probe.llmgw",
        service_names=["probe.v1.S"],
        register=lambda server: None,
        probe=probe,
        close=engine.dispose,
    )
    settings = ServiceSettings(health_interval_seconds=0.2)
    async with running_server(settings, spec) as (_, channel):
        stub = health_pb2_grpc.HealthStub(channel)
        await wait_for_status(stub, SERVING)
        await cable.unplug()
        await wait_for_status(stub, NOT_SERVING)
        await cable.plug()  # same port again
        await wait_for_status(stub, SERVING)
    await cable.unplug()


async def test_stop_turns_not_serving_then_drains_in_flight_calls():
    release = asyncio.Event()

    async def slow(request: bytes, context) -> bytes:
        await release.wait()
        return b"done"

    def register(server: grpc.aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(slow)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("probe.v1.S", {"Slow": handler}),)
        )

    spec = ServiceSpec(domain="probe.llmgw", service_names=["probe.v1.S"], register=register)
    settings = ServiceSettings(shutdown_delay_seconds=0.6)
    async with running_server(settings, spec) as (server, channel):
        stub = health_pb2_grpc.HealthStub(channel)
        await wait_for_status(stub, SERVING)
        call = channel.unary_unary("/probe.v1.S/Slow")

        async def slow_call() -> bytes:
            return await call(b"", timeout=10)

        in_flight = asyncio.create_task(slow_call())
        await asyncio.sleep(0.2)
        stopping = asyncio.create_task(server.stop(grace=5))
        await asyncio.sleep(0.2)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service="probe.v1.S"))
        assert reply.status == NOT_SERVING  # balancers see it before the listener closes
        await asyncio.sleep(0.6)  # now the listener is closed, the call still runs
        release.set()
        assert await in_flight == b"done"  # the in-flight call was drained, not cut
        await stopping
