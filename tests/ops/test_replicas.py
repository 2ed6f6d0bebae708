"""A replica added later gets traffic (servers close connections after
GATEWAY_MAX_CONNECTION_AGE_SECONDS, so clients re-resolve the headless name), and a full
server sheds calls with UNAVAILABLE/OVERLOADED instead of queueing them."""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest

from gateway_common.channels import open_channel
from gateway_common.healthcheck import check
from gateway_common.server import GrpcServer
from gateway_common.settings import ServiceSettings
from gateway_common.status import error_info
from tests.ops.replicas import headless_dns, replica_spec, start_replica, who
from tests.support import free_port


async def spread_after_scale_out(age_seconds: float) -> Counter[str]:
    """Calls over a round-robin channel to a headless name; replica b joins mid-way.
    Returns who answered the calls made after b became ready."""
    settings = ServiceSettings().model_copy(
        update={"max_connection_age_seconds": age_seconds, "max_connection_age_grace_seconds": 0.5}
    )
    port = free_port()
    async with headless_dns() as (dns, dns_port):
        dns.addresses = ["127.0.0.1"]
        a = await start_replica(settings, "127.0.0.1", port, "a")
        # The resolver waits 30 s between resolutions by default (fine against a 300 s
        # connection age); the test's ages are seconds.
        fast = [("grpc.dns_min_time_between_resolutions_ms", 200)]
        target = f"dns://127.0.0.1:{dns_port}/replicas.test:{port}"
        channel = open_channel(target, settings, extra_options=fast)
        try:
            assert {await who(channel) for _ in range(20)} == {"a"}
            b = await start_replica(settings, "127.0.0.2", port, "b")
            dns.addresses = ["127.0.0.1", "127.0.0.2"]  # b is ready: the name lists it
            seen: Counter[str] = Counter()
            loop = asyncio.get_running_loop()
            until = loop.time() + max(age_seconds, 1.0) * 3
            while loop.time() < until:
                seen[await who(channel)] += 1
                await asyncio.sleep(0.01)
            await b.stop(grace=0.2)
        finally:
            await channel.close()
            await a.stop(grace=0.2)
    return seen


async def test_a_replica_started_later_receives_calls() -> None:
    seen = await spread_after_scale_out(age_seconds=1.0)
    assert seen["b"] > 0.2 * sum(seen.values()), seen


async def test_without_a_connection_age_the_new_replica_stays_idle() -> None:
    """The control: what max_connection_age fixes (long-lived channels never re-resolve)."""
    seen = await spread_after_scale_out(age_seconds=0)
    assert seen["b"] == 0, seen


async def test_a_full_server_sheds_with_unavailable_overloaded() -> None:
    gate = asyncio.Event()
    settings = ServiceSettings(port=0).model_copy(update={"max_concurrent_rpcs": 2})
    server = GrpcServer(settings, replica_spec("a", work=gate.wait))
    port = await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        held = [asyncio.create_task(who(channel, timeout=10)) for _ in range(2)]
        await asyncio.sleep(0.3)
        with pytest.raises(grpc.aio.AioRpcError) as shed:
            await who(channel)
        assert shed.value.code() == grpc.StatusCode.UNAVAILABLE  # retryable, not a quota
        info = error_info(shed.value)
        assert info is not None and info.reason == "OVERLOADED", info
        assert await check(f"127.0.0.1:{port}") == "SERVING"  # health is never shed
        gate.set()
        assert await asyncio.gather(*held) == ["a", "a"]
        assert await who(channel) == "a"  # slots are given back
    finally:
        await channel.close()
        await server.stop(grace=0.2)
